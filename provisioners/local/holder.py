"""The per-host holder: a long-lived process owning the host's mount and UTS namespaces.

``nsenter --net=/run/netns/<ns> unshare --mount --uts --propagation private`` then, inside:
set the hostname, lazily unmount the copied ``nsfs`` mounts (they would pin other labs'
namespaces), bind ``<hostdir>/run`` on ``/run``, mount the host's own sysfs on ``/sys``
(``/sys/class/net`` shows the host's links; the cgroup mounts are carried over) and sleep.
sshd, etcd and dockerd join it with ``nsenter -t <holder> -m -u -n``, so every host has its
own ``/run`` (``/run/sshd``, ``/run/flannel/subnet.env``, ``/run/docker.sock``), hostname,
``/sys`` and network. Like an Atomic host, each host also has its own boot id
(``<hostdir>/boot_id`` bound on ``/proc/sys/kernel/random/boot_id``; a reboot rewrites it,
see :func:`new_boot_id`) and a read-only ``/usr`` (a read-only bind of the machine's).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from stackcheck_provisioners.base import ProvisionerError
from stackcheck_provisioners.hostlab import cgroups, state
from stackcheck_provisioners.hostlab.layout import HostPlan, Layout
from stackcheck_provisioners.hostlab.proc import alive, log_tail, spawn

READY = ".holder-ready"

_SCRIPT = f"""set -e
hostname "$1"
for m in $(findmnt -rn -t nsfs -o TARGET | sort -r); do umount -l "$m" 2>/dev/null || true; done
mount --bind "$2" /run
mount -t sysfs sysfs "$3"
mount --rbind /sys/fs/cgroup "$3/fs/cgroup"
umount -l /sys
mount --move "$3" /sys
mount --bind "$4" /proc/sys/kernel/random/boot_id
mount --bind /usr /usr
mount -o remount,bind,ro /usr
# SSH commands run bash, which reads ~/.bashrc; this machine's (e.g. pyenv init) is not the
# host's and slows every command (and a killed session can leave its locks behind)
if [ -f /root/.bashrc ]; then mount --bind /dev/null /root/.bashrc; fi
mkdir -p /run/sshd /run/flannel /run/lock /run/tmp
chmod 0755 /run/sshd
touch /run/{READY}
exec sleep infinity
"""

#: per-host directories bind-mounted inside the host: host path (under hostdir) -> mount point
BINDS = {"run": "/run"}


def argv(layout: Layout, host: HostPlan) -> list[str]:
    return [
        "nsenter", f"--net=/run/netns/{host.netns}", "--",
        "unshare", "--mount", "--uts", "--propagation", "private", "--",
        "/bin/sh", "-c", _SCRIPT, "holder", host.name, str(host.run_dir),
        str(host.dir / "sys"), str(boot_id_file(host)),
    ]


def boot_id_file(host: HostPlan) -> Path:
    """The host's boot id, seen inside it as ``/proc/sys/kernel/random/boot_id``."""
    return host.dir / "boot_id"


def new_boot_id(host: HostPlan) -> str:
    """Give the host a new boot id (rewritten in place: the bind mount follows the inode)."""
    value = str(uuid.uuid4())
    with open(boot_id_file(host), "w") as f:
        f.write(value + "\n")
    return value


def start(layout: Layout, host: HostPlan) -> None:
    """Start the holder of ``host`` (no wait); record its PID."""
    host.run_dir.mkdir(parents=True, exist_ok=True)
    (host.dir / "sys").mkdir(exist_ok=True)
    (host.run_dir / READY).unlink(missing_ok=True)
    if not boot_id_file(host).exists():
        new_boot_id(host)
    cg = cgroups.service_cgroup(layout.name, host.name, "holder")
    pid, start_ = spawn(argv(layout, host), log=host.dir / "logs" / "holder.log",
                        env=layout.env, cgroup=cg)
    state.set_process(layout.state_dir, f"{host.name}/holder",
                      {"host": host.name, "service": "holder", "pid": pid, "start": start_})
    for sub, mnt in BINDS.items():
        # informational: private to the host's mount namespace, gone with the holder
        state.add_resource(layout.state_dir, "private_mount", mnt, host=host.name,
                           source=str(host.dir / sub))
    state.add_resource(layout.state_dir, "private_mount", "/sys", host=host.name,
                       source="sysfs (host netns)")
    state.add_resource(layout.state_dir, "private_mount", "/proc/sys/kernel/random/boot_id",
                       host=host.name, source=str(boot_id_file(host)))
    state.add_resource(layout.state_dir, "private_mount", "/usr", host=host.name,
                       source="/usr (read-only bind)")


def wait_ready(layout: Layout, host: HostPlan, timeout: float = 10) -> None:
    """Wait until the holder has set up its mounts and sleeps."""
    rec = (state.read(layout.state_dir) or {}).get("processes", {}).get(f"{host.name}/holder")
    if not rec:
        raise ProvisionerError(f"{host.name}: no holder recorded")
    deadline = time.monotonic() + timeout
    while not (host.run_dir / READY).exists():
        if not alive(rec["pid"], rec["start"]):
            tail = log_tail(host.dir / "logs" / "holder.log")
            raise ProvisionerError(f"{host.name}: namespace holder exited: {tail}")
        if time.monotonic() > deadline:
            raise ProvisionerError(f"{host.name}: namespace holder not ready in {timeout:g}s")
        time.sleep(0.02)


def holder_pid(data: dict, host: str) -> int:
    rec = data.get("processes", {}).get(f"{host}/holder")
    if not rec or not alive(rec["pid"], rec["start"]):
        raise ProvisionerError(f"{host}: its namespace holder is not running (lab broken?)")
    return int(rec["pid"])


def enter(pid: int) -> list[str]:
    """The nsenter prefix to run a command inside the host of holder ``pid``."""
    return ["nsenter", "-t", str(pid), "-m", "-u", "-n", "--"]
