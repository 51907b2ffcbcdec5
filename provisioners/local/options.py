"""The ``--option`` keys of the local lab."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from stackcheck_provisioners.hostlab.options import HostLabOptions


class LocalOptions(HostLabOptions):
    """``--option`` keys of the local lab (``stackcheck lab up --help-options`` lists them)."""

    flannel: Literal["etcd", "kube"] = Field(
        "etcd", description="where flannel keeps its leases: etcd, or kube (Node annotations, "
        "podCIDRs and the kube-flannel-cfg ConfigMap, as --kube-subnet-mgr)")
    runtime: Literal["docker", "containerd"] = Field(
        "docker", description="the hosts' container runtime: docker (dockershim) or containerd "
        "(CRI, Debian's CNI plugins; needs kubernetes=true)")

    @field_validator("flannel")
    @classmethod
    def _kube_mode_needs_kubernetes(cls, flannel: str, info: ValidationInfo) -> str:
        if flannel == "kube" and not info.data.get("kubernetes", True):
            raise ValueError("needs Kubernetes (kubernetes=true): the Nodes hold flannel's "
                             "subnets and lease data")
        return flannel

    @field_validator("runtime")
    @classmethod
    def _cri_needs_kubernetes(cls, runtime: str, info: ValidationInfo) -> str:
        if runtime != "docker" and not info.data.get("kubernetes", True):
            raise ValueError("needs kubernetes=true (its containers are the kubelets' pods)")
        return runtime
