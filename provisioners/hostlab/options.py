"""The ``--option`` keys every lab on this machine shares: what its :class:`Layout` needs.

Each provisioner of the kit (``local``, ``machines``) extends :class:`HostLabOptions` with its
own keys; :meth:`~stackcheck.provisioner.Provisioner.parse_options` validates them once (an
unknown key or a bad value is one line naming the key), and the layout is built from the
validated model, never from the raw strings.
"""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator

from stackcheck_provisioners.base import ProvisionerOptions
from stackcheck_provisioners.hostlab.layout import DEFAULT_NAME, DEFAULT_SUBNET, NAME_RE


class HostLabOptions(ProvisionerOptions):
    """The keys of a lab on this machine; a provisioner's model may change their defaults."""

    name: str = Field(DEFAULT_NAME, description="lab name: namespaces, links and state use it")
    subnet: str = Field(DEFAULT_SUBNET, description="private IPv4 subnet of the hosts' underlay")
    docker: bool = Field(True, description="run dockerd on every host")
    kubernetes: bool = Field(True, description="run a Kubernetes control plane and kubelets")
    k8s_bin_dir: str | None = Field(
        None, description="use Kubernetes binaries from this folder instead of the cached build")

    @field_validator("name")
    @classmethod
    def _a_short_name(cls, name: str) -> str:
        if not NAME_RE.match(name):
            raise ValueError("use 1-20 of a-z, 0-9 and '-'")
        return name

    @field_validator("subnet")
    @classmethod
    def _a_private_subnet(cls, subnet: str) -> str:
        try:
            network = ipaddress.IPv4Network(subnet)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        if not network.is_private:
            raise ValueError("must be a private range")
        return str(network)
