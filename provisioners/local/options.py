"""The ``--option`` keys of the local lab."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stackcheck_provisioners.base import ProvisionerOptions
from stackcheck_provisioners.hostlab.layout import DEFAULT_NAME, DEFAULT_SUBNET


class LocalOptions(ProvisionerOptions):
    """``--option`` keys of the local lab (``stackcheck lab up --help-options`` lists them)."""

    name: str = Field(DEFAULT_NAME, description="lab name: namespaces, links and state use it")
    subnet: str = Field(DEFAULT_SUBNET, description="private IPv4 subnet of the hosts' underlay")
    docker: bool = Field(True, description="run dockerd on every host")
    kubernetes: bool = Field(True, description="run a Kubernetes control plane and kubelets")
    k8s_bin_dir: str | None = Field(
        None, description="use Kubernetes binaries from this folder instead of the cached build")
    flannel: Literal["etcd", "kube"] = Field(
        "etcd", description="where flannel keeps its leases: etcd, or kube (Node annotations, "
        "podCIDRs and the kube-flannel-cfg ConfigMap, as --kube-subnet-mgr)")
    runtime: Literal["docker", "containerd"] = Field(
        "docker", description="the hosts' container runtime: docker (dockershim) or containerd "
        "(CRI, Debian's CNI plugins; needs kubernetes=true)")
