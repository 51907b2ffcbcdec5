"""dockerd per host (Debian docker.io), inside the host's namespaces, and an offline busybox.

dockerd runs under ``tini -s`` (exited shims get reaped), with its own data root, exec root
and socket (``/run/docker.sock`` inside the host = ``<hostdir>/run/docker.sock`` outside),
``--bip`` in the host's flannel subnet with the flannel MTU, no iptables/masquerading, and
containers in the host's cgroup tree. It never runs in the root namespace.
"""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import tarfile
from pathlib import Path

from stackcheck_provisioners.base import ProvisionerError
from stackcheck_provisioners.hostlab import cgroups, state
from stackcheck_provisioners.hostlab.layout import FLANNEL_MTU, HostPlan, Layout
from stackcheck_provisioners.hostlab.proc import alive, run

IMAGE = "stackcheck/busybox:latest"
ALIASES = ["busybox:latest"]
BUSYBOX = "/bin/busybox"


def prepare(layout: Layout, host: HostPlan) -> None:
    (host.dir / "docker").mkdir(parents=True, exist_ok=True)
    (host.dir / "docker-daemon.json").write_text("{}\n")


def argv(layout: Layout, host: HostPlan, bip: str | None = None) -> list[str]:
    cgroup_parent = f"/{cgroups.lab_group(layout.name)}/{host.name}/containers"
    return [
        "tini", "-s", "--",
        "dockerd",
        f"--config-file={host.dir / 'docker-daemon.json'}",
        f"--data-root={host.dir / 'docker'}",
        "--exec-root=/run/docker",
        "-H", "unix:///run/docker.sock",
        "--pidfile=/run/docker.pid",
        f"--bip={bip or host.bridge_ip + '/24'}",
        f"--mtu={FLANNEL_MTU}",
        "--iptables=false", "--ip-masq=false", "--ip-forward=false",
        "--storage-driver=overlay2",
        "--exec-opt", "native.cgroupdriver=cgroupfs",
        f"--cgroup-parent={cgroup_parent}",
        "--shutdown-timeout=2",
        "--userland-proxy=false",
    ]


def ping(sock: Path, timeout: float = 1) -> bool:
    """True if the daemon at ``sock`` answers /_ping."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = s.recv(4096)
    except OSError:
        return False
    return data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n", 1)[0] + b" "


def socket_path(layout: Layout, host: HostPlan) -> Path:
    """A short path to the host's docker socket, through its holder's root (sun_path <= 108)."""
    data = state.read(layout.state_dir) or {}
    rec = data.get("processes", {}).get(f"{host.name}/holder")
    if rec and alive(rec["pid"], rec["start"]):
        return Path(f"/proc/{rec['pid']}/root/run/docker.sock")
    return host.docker_socket


def ready(layout: Layout, host: HostPlan) -> bool:
    return ping(socket_path(layout, host))


def client() -> str:
    exe = shutil.which("docker")
    if exe is None:
        raise ProvisionerError("docker client not found (Debian package docker.io)")
    return exe


def docker(layout: Layout, host: HostPlan, *args: str, timeout: float = 60, check: bool = True,
           input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI against the host's daemon (through its socket file)."""
    return run([client(), "-H", f"unix://{socket_path(layout, host)}", *args],
               timeout=timeout, check=check, input=input)


def build_busybox_tar(layout: Layout) -> Path:
    """A rootfs tar holding the static busybox and its applet links (made offline)."""
    out = layout.images_dir / "busybox-rootfs.tar"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    applets = run([BUSYBOX, "--list-full"]).stdout.split()
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        for d in ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "tmp", "root",
                  "proc", "sys", "dev", "var", "var/tmp", "home"]:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d in ("tmp", "var/tmp") else 0o755
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in applets:
            if applet == "bin/busybox":
                continue
            info = tarfile.TarInfo(applet)
            info.type = tarfile.SYMTYPE
            info.linkname = "/bin/busybox"
            tar.addfile(info)
        for name, text in {
            "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
            "etc/group": "root:x:0:\nnogroup:x:65534:\n",
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(out)
    return out


def import_busybox(layout: Layout, host: HostPlan) -> None:
    tar = build_busybox_tar(layout)
    docker(layout, host, "import", "--change", 'CMD ["sh"]', str(tar), IMAGE, timeout=120)
    for alias in ALIASES:
        docker(layout, host, "tag", IMAGE, alias)


def version() -> str:
    out = run(["dockerd", "--version"], check=False).stdout.strip()
    return out.removeprefix("Docker version ").split(",")[0] or "unknown"
