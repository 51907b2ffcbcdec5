"""Where the lab's Kubernetes files live and its fixed addresses: what the control CLI needs
to start a Kubernetes service, without the certificate code (``k8s_pki``) that makes them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackcheck_provisioners.hostlab.layout import HostPlan, Layout

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the first address of SERVICE_CIDR: the ``kubernetes`` Service
API_PORT = 6443


def k8s_dir(layout: Layout) -> Path:
    return layout.state_dir / "kubernetes"


def node_dir(host: HostPlan) -> Path:
    return host.dir / "k8s"
