"""The lab spec: a small YAML file saying what to build on which OpenStack cloud."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from stackcheck.lab import located_all, problems_of, read_yaml
from stackcheck.layers import known_roles
from stackcheck_provisioners.base import ProvisionerError

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,30}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rule(_Model):
    """One ingress rule. ``remote: group`` means "from the lab's own hosts"."""

    protocol: Literal["tcp", "udp", "icmp"] = "tcp"
    ports: str | None = Field(None, description="'22' or '2379-2380'; none for icmp")
    remote: str = "group"

    @field_validator("ports")
    @classmethod
    def _port_range(cls, value: str | None) -> str | None:
        if value is None:
            return None
        low, _, high = value.partition("-")
        try:
            lo, hi = int(low), int(high or low)
        except ValueError:
            raise ValueError(f"expected a port or a range like 2379-2380, got {value!r}") from None
        if not 1 <= lo <= hi <= 65535:
            raise ValueError(f"port range out of bounds: {value!r}")
        return value

    @field_validator("remote")
    @classmethod
    def _remote(cls, value: str) -> str:
        if value != "group":
            try:
                ipaddress.ip_network(value)
            except ValueError:
                raise ValueError(f"expected 'group' or a CIDR, got {value!r}") from None
        return value

    @property
    def port_range(self) -> tuple[int | None, int | None]:
        if self.ports is None:
            return None, None
        low, _, high = self.ports.partition("-")
        return int(low), int(high or low)


def default_rules(admin_cidr: str | None = None) -> list[Rule]:
    """SSH and the API from outside; etcd, vxlan, kubelet, API between lab hosts; ICMP.

    etcd's client port is opened to ``admin_cidr`` only when one is given (the harness
    talks to etcd directly); it is never opened to the world by default.
    """
    outside = admin_cidr or "0.0.0.0/0"
    extra = [Rule(protocol="tcp", ports="2379", remote=admin_cidr)] if admin_cidr else []
    return [
        Rule(protocol="tcp", ports="22", remote=outside),
        Rule(protocol="tcp", ports="6443", remote=outside),
        *extra,
        Rule(protocol="icmp", remote="0.0.0.0/0"),
        Rule(protocol="tcp", ports="2379-2380", remote="group"),
        Rule(protocol="udp", ports="8472", remote="group"),
        Rule(protocol="tcp", ports="10250", remote="group"),
        Rule(protocol="tcp", ports="6443", remote="group"),
        Rule(protocol="tcp", ports="8080", remote="group"),
    ]


class HostSpec(_Model):
    """A host, or ``count`` alike hosts named ``<name>1..<name>N``."""

    name: str = Field(pattern=NAME_PATTERN)
    roles: list[str] = Field(min_length=1)
    count: int = Field(1, ge=1, le=32)
    fixed_ip: str | None = None

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - known_roles())
        if unknown:
            raise ValueError(f"unknown role(s) {', '.join(unknown)}; expected some of "
                             f"{', '.join(sorted(known_roles()))}")
        return value

    @model_validator(mode="after")
    def _one_ip_one_host(self) -> HostSpec:
        if self.fixed_ip and self.count > 1:
            raise ValueError("fixed_ip needs count: 1")
        return self


class NetworkSpec(_Model):
    cidr: str = "10.42.0.0/24"
    existing: str | None = Field(None, description="name or id of a network to use as is")
    external: str | None = Field(None, description="external network: router gateway, FIPs")
    dns_nameservers: list[str] = Field(default_factory=list)

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            net = ipaddress.ip_network(value)
        except ValueError:
            raise ValueError(f"expected a CIDR like 10.42.0.0/24, got {value!r}") from None
        if net.version != 4 or net.num_addresses < 64:
            raise ValueError(f"expected an IPv4 network of /26 or larger, got {value!r}")
        return str(net)


class LabSpec(_Model):
    """What to build: hosts and roles, image, flavor, network, access."""

    cloud: str = Field(min_length=1, description="a cloud name from clouds.yaml")
    name: str | None = Field(None, pattern=NAME_PATTERN)
    image: str = Field(min_length=1)
    flavor: str = Field(min_length=1)
    user_data: Literal["cloud-init", "none"] = Field(
        "cloud-init", description="'none' when the image already is a lab image"
    )
    ssh_user: str = "fedora"
    key_type: Literal["ed25519", "rsa"] = "ed25519"
    floating_ips: bool = False
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    admin_cidr: str | None = Field(None, description="where the harness runs from")
    rules: list[Rule] | None = Field(None, description="replaces the default rules")
    hosts: list[HostSpec] | None = None
    flannel_network: str = "172.30.0.0/16"

    @model_validator(mode="after")
    def _consistent(self) -> LabSpec:
        if self.floating_ips and not self.network.external:
            raise ValueError("floating_ips: true needs network.external (the public network)")
        needs_ips = self.user_data == "cloud-init" and self.network.existing
        if needs_ips and (not self.hosts or any(not h.fixed_ip for h in self.hosts)):
            raise ValueError("with network.existing and cloud-init user-data every host needs "
                             "a fixed_ip (etcd's initial cluster is written into user-data)")
        return self

    @field_validator("admin_cidr")
    @classmethod
    def _admin_cidr(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                return str(ipaddress.ip_network(value))
            except ValueError:
                raise ValueError(f"expected a CIDR like 198.51.100.7/32, got {value!r}") \
                    from None
        return value

    def security_rules(self) -> list[Rule]:
        return self.rules if self.rules is not None else default_rules(self.admin_cidr)

    def host_list(self, default_count: int) -> list[HostSpec]:
        """The hosts one by one (``count`` expanded); a default lab when none are given."""
        groups = self.hosts or [
            HostSpec(name="h", count=default_count, roles=["etcd", "flannel", "docker", "node"])
        ]
        out: list[HostSpec] = []
        for group in groups:
            if group.count == 1 and self.hosts:
                out.append(group)
                continue
            out += [HostSpec(name=f"{group.name}{i}", roles=list(group.roles))
                    for i in range(1, group.count + 1)]
        if not self.hosts:
            out[0].roles.append("master")
        names = [h.name for h in out]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ProvisionerError(f"lab spec: duplicate host name(s): {', '.join(dupes)}")
        return out


def load_spec(path: str | Path) -> LabSpec:
    """Read and validate a lab spec; raise ProvisionerError with every problem, each
    file:line: field: why (as the inventory does)."""
    path = Path(path)
    data, root = read_yaml(path, "lab spec", ProvisionerError)
    if not isinstance(data, dict):
        raise ProvisionerError(f"{path}:1: expected a mapping of lab spec fields")
    try:
        return LabSpec.model_validate(data)
    except ValidationError as exc:
        raise ProvisionerError(located_all(path, root, problems_of(exc))) from None
