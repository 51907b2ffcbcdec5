"""Kubernetes images made offline in each host's Docker: pause, and busybox under e2e's names.

pause = a one-file rootfs holding the static ``pause`` binary, imported with
``ENTRYPOINT ["/pause"]`` and tagged as the kubelet's ``--pod-infra-container-image`` and as
``k8s.gcr.io/pause:3.2``. busybox = the lab's ``stackcheck/busybox:latest`` (imported by the
docker step) tagged ``busybox:1.29`` / ``docker.io/library/busybox:1.29``, as upstream e2e
expects. Nothing is pulled: pods need ``imagePullPolicy: Never`` or ``IfNotPresent``.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from provisioners.local import docker
from provisioners.local.kubelet import PAUSE_IMAGE
from provisioners.local.layout import HostPlan, Layout

PAUSE_ALIASES = ["k8s.gcr.io/pause:3.2"]
BUSYBOX_ALIASES = ["busybox:1.29", "docker.io/library/busybox:1.29"]


def build_pause_tar(layout: Layout, pause_binary: Path) -> Path:
    """A rootfs tar with ``/pause`` (the static binary built with the Kubernetes binaries)."""
    out = layout.images_dir / "pause-rootfs.tar"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        tar.add(str(pause_binary), arcname="pause")
    tmp.replace(out)
    return out


def import_images(layout: Layout, host: HostPlan, pause_tar: Path) -> None:
    """Import pause and tag both images in the host's Docker."""
    docker.docker(layout, host, "import", "--change", 'ENTRYPOINT ["/pause"]', str(pause_tar),
                  PAUSE_IMAGE, timeout=120)
    for alias in PAUSE_ALIASES:
        docker.docker(layout, host, "tag", PAUSE_IMAGE, alias)
    for alias in BUSYBOX_ALIASES:
        docker.docker(layout, host, "tag", docker.IMAGE, alias)
