"""Kubernetes images made offline in each host's runtime: pause, and busybox under e2e's names.

pause = a one-file rootfs holding the static ``pause`` binary, with ``ENTRYPOINT ["/pause"]``,
named as the kubelet's ``--pod-infra-container-image`` (containerd's ``sandbox_image``) and
``k8s.gcr.io/pause:3.2``. busybox = the lab's ``stackcheck/busybox:latest`` (a rootfs of
Debian's busybox-static) also named ``busybox:1.29`` / ``docker.io/library/busybox:1.29``, as
upstream e2e expects. Docker hosts get them with ``docker import`` + ``docker tag``;
containerd hosts with ``ctr -n k8s.io images import`` of a docker-format archive made here
(:func:`image_archive`). Nothing is pulled: pods need ``imagePullPolicy: Never`` or
``IfNotPresent``.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from stackcheck_provisioners.hostlab import containerd, docker
from stackcheck_provisioners.hostlab.kubelet import PAUSE_IMAGE
from stackcheck_provisioners.hostlab.layout import HostPlan, Layout

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


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def image_archive(out: Path, rootfs_tar: Path, tags: list[str], config: dict) -> Path:
    """A docker-format image archive (``docker save`` layout, one layer) of a rootfs tar.

    ``config`` is the image's runtime config (``{"Entrypoint": [...]}`` or ``{"Cmd": [...]}``).
    """
    if out.exists():
        return out
    layer = rootfs_tar.read_bytes()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    image_config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "stackcheck local lab (offline rootfs)"}],
    }, separators=(",", ":")).encode()
    config_name = hashlib.sha256(image_config).hexdigest() + ".json"
    layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": tags, "Layers": [layer_name]}]
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        _add(tar, config_name, image_config)
        _add(tar, layer_name, layer)
        _add(tar, "manifest.json", json.dumps(manifest).encode())
    tmp.replace(out)
    return out


def containerd_archives(layout: Layout, pause_tar: Path) -> list[Path]:
    """The pause and busybox archives for ``ctr images import`` (made once per lab)."""
    busybox_tar = docker.build_busybox_tar(layout)
    d = layout.images_dir
    return [
        image_archive(d / "pause-image.tar", pause_tar, [PAUSE_IMAGE, *PAUSE_ALIASES],
                      {"Entrypoint": ["/pause"]}),
        image_archive(d / "busybox-image.tar", busybox_tar,
                      [docker.IMAGE, *docker.ALIASES, *BUSYBOX_ALIASES], {"Cmd": ["sh"]}),
    ]


def import_containerd(layout: Layout, host: HostPlan, archives: list[Path]) -> None:
    """Import the archives into the host's containerd, namespace ``k8s.io`` (the CRI's)."""
    for archive in archives:
        containerd.import_archive(layout, host, archive)
