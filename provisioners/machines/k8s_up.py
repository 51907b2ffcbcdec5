"""Kubernetes in a machines lab: its binaries, then its start watched to Ready nodes.

The units themselves start with each machine (:mod:`stackcheck_provisioners.machines.kubernetes`
wrote them before the first boot); here the images go into each containerd and every wait is
bounded, saying what the machine's own journal says when it runs out.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import requests

from stackcheck.lab import Lab
from stackcheck.ssh import host_connection
from stackcheck.waits import wait_for
from stackcheck_provisioners.base import ProvisionerError
from stackcheck_provisioners.hostlab import docker, k8s_nodes, k8s_services
from stackcheck_provisioners.hostlab.layout import Layout
from stackcheck_provisioners.hostlab.progress import Progress
from stackcheck_provisioners.machines import kubernetes as kube
from stackcheck_provisioners.machines.kubernetes import CONTROL_PLANE
from stackcheck_provisioners.machines.probe import journal

K8S_TIMEOUT = 180.0
PAUSE_TAR = "pause-rootfs.tar"


def binaries(layout: Layout, progress: Progress) -> Path:
    """The cached offline build (or the option ``k8s_bin_dir``)."""
    from stackcheck_builders.kubernetes import Progress as BuildProgress
    from stackcheck_builders.kubernetes import ensure_binaries

    given = layout.k8s_bin_dir
    return ensure_binaries(bin_dir=Path(given) if given else None,
                           progress=BuildProgress(progress.console))


def binaries_or_why(future: Future[Path] | None, progress: Progress
                    ) -> tuple[Path | None, str]:
    """The binaries, or None and why Kubernetes is not run."""
    from stackcheck_builders.kubernetes import K8sBuildError

    if future is None:
        return None, "disabled (option kubernetes=false)"
    try:
        return future.result(), ""
    except (K8sBuildError, ProvisionerError, OSError) as exc:
        progress.note(f"Kubernetes unavailable: {exc}")
        return None, f"unavailable: no Kubernetes binaries: {exc}"


def _nodes(layout: Layout) -> dict[str, str] | str:
    """Node name -> ``Ready`` or why not (as the API says), or why the API cannot tell."""
    control = layout.hosts[0]
    try:
        with k8s_services.session(layout) as s:
            reply = s.get(k8s_services.api_url(control, "/api/v1/nodes"), timeout=5)
        reply.raise_for_status()
        items = reply.json()["items"]
    except (requests.RequestException, ValueError, KeyError) as exc:
        return f"cannot list nodes: {type(exc).__name__}"
    return {n["metadata"]["name"]: k8s_nodes.node_state(n) for n in items}


def _default_token(layout: Layout) -> bool:
    try:
        with k8s_services.session(layout) as s:
            reply = s.get(k8s_services.api_url(
                layout.hosts[0], "/api/v1/namespaces/default/serviceaccounts/default"), timeout=5)
        return reply.status_code == 200 and bool(reply.json().get("secrets"))
    except (requests.RequestException, ValueError):
        return False


def import_images(lab: Lab, progress: Progress) -> None:
    with progress.step("Kubernetes images (pause, busybox) into each containerd (k8s.io)"):
        for h in lab.hosts:
            out = host_connection(lab, h).run(kube.images_command(
                f"/var/tmp/{PAUSE_TAR}", docker.IMAGE))
            if out.rc != 0:
                raise ProvisionerError(f"{h.name}: importing the Kubernetes images into "
                                       f"containerd failed: {(out.stderr or out.stdout)[-300:]}")


def control_plane_ready(layout: Layout, lab: Lab, progress: Progress) -> None:
    """The API server, then the controllers and the default service account's token."""
    control = lab.hosts[0]
    with progress.step(f"kube-apiserver.service ready on {control.name} (TLS, RBAC, etcd "
                       f"{k8s_services.etcd_prefix(layout)})"):
        wait_for(lambda: k8s_services.ready(layout, layout.hosts[0], "kube-apiserver"),
                 timeout=K8S_TIMEOUT, interval=1,
                 what=f"{control.name}: kube-apiserver to answer /readyz",
                 describe=lambda: journal(lab, control, "kube-apiserver"))
    with progress.step("controller-manager, scheduler, default service account"):
        for service in CONTROL_PLANE[1:]:
            wait_for(lambda s=service: k8s_services.ready(layout, layout.hosts[0], s),
                     timeout=K8S_TIMEOUT, interval=1,
                     what=f"{control.name}: {service} to answer /healthz",
                     describe=lambda s=service: journal(lab, control, s))
        wait_for(lambda: _default_token(layout), timeout=K8S_TIMEOUT, interval=1,
                 what="the default service account's token")


def nodes_ready(layout: Layout, lab: Lab, progress: Progress) -> None:
    """Every machine a Ready Node (else each one's state and its kubelet's journal)."""
    want = {h.name for h in lab.hosts}

    def ready() -> bool:
        nodes = _nodes(layout)
        return isinstance(nodes, dict) and all(nodes.get(n) == "Ready" for n in want)

    def seen() -> str:
        nodes = _nodes(layout)
        if isinstance(nodes, str):
            return nodes
        return "; ".join(
            f"{h.name}: {nodes.get(h.name, 'no Node')}"
            + ("" if nodes.get(h.name) == "Ready" else f", {journal(lab, h, 'kubelet')}")
            for h in lab.hosts)

    with progress.step(f"{len(want)} nodes Ready (kubelet.service on containerd)"):
        wait_for(ready, timeout=K8S_TIMEOUT, interval=1,
                 what=f"{len(want)} Ready nodes", describe=seen)


def start_kubernetes(layout: Layout, lab: Lab, progress: Progress) -> None:
    """Images into each containerd; wait (bounded) for the control plane and Ready nodes."""
    import_images(lab, progress)
    control_plane_ready(layout, lab, progress)
    nodes_ready(layout, lab, progress)
