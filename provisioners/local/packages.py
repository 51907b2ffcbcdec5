"""Which Debian package provides each program the local lab runs; install what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess

from stackcheck_provisioners.base import ProvisionerError

#: program -> Debian package
PROGRAMS: dict[str, str] = {
    "ip": "iproute2",
    "bridge": "iproute2",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "findmnt": "util-linux",
    "chattr": "e2fsprogs",
    "etcd": "etcd-server",
    "etcdctl": "etcd-client",
    "sshd": "openssh-server",
    "ostree": "ostree",
    "dockerd": "docker.io",
    "docker": "docker.io",
    "containerd": "containerd",  # option runtime=containerd
    "ctr": "containerd",
    "tini": "tini",
    "ping": "iputils-ping",  # the path-MTU check pings with DF set from the hosts
    "iptables": "iptables",
}

#: files (not on PATH) -> Debian package
FILES: dict[str, str] = {
    "/bin/busybox": "busybox-static",
    "/usr/sbin/sshd": "openssh-server",
    "/usr/lib/cni/bridge": "containernetworking-plugins",  # option runtime=containerd
}


def _present(name: str) -> bool:
    if name.startswith("/"):
        return os.path.exists(name)
    return shutil.which(name) is not None or os.path.exists(f"/usr/sbin/{name}")


def missing() -> list[str]:
    """Debian packages needed but not installed, sorted."""
    wanted = {**PROGRAMS, **FILES}
    return sorted({pkg for name, pkg in wanted.items() if not _present(name)})


def ensure() -> None:
    """Install missing packages when root; otherwise raise with the exact list."""
    pkgs = missing()
    if not pkgs:
        return
    if os.geteuid() != 0:
        raise ProvisionerError(
            f"the local lab needs these Debian packages: {' '.join(pkgs)} "
            f"(apt-get install -y --no-install-recommends {' '.join(pkgs)})"
        )
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *pkgs]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(cmd, capture_output=True, env=env).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env)
        result = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["?"])[-1]
            raise ProvisionerError(f"could not install {' '.join(pkgs)}: {last}")
    still = missing()
    if still:
        raise ProvisionerError(f"packages installed but programs still missing: {' '.join(still)}")
