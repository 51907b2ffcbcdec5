"""The lab's supervisor of one machine: boots it from the default deployment, again on reboot.

``python -m stackcheck_provisioners.machines.supervisor --sysroot SR --netns NS --name NAME
--upstream REPO --log FILE [--uuid UUID]``

Each boot resolves the default deployment from the sysroot's boot loader entries (as an
initramfs would) and runs ``systemd-nspawn --boot`` on it in the host's network namespace:
``/sysroot``, ``/boot`` and the stateroot's ``/var`` bound in, ``/usr`` read-only,
``/run/ostree-booted`` present, the update repository read-only on ``/run/ostree-upstream``.

The machine's root is the deployment bound on ``--root`` (an empty folder outside the sysroot)
in a private mount namespace of this boot, as ostree-prepare-root makes ``/`` a private bind:
were nspawn given the deployment's own path, the ``/sysroot`` bind would hold a *peer* of the
root mount (nspawn makes the root shared before it binds ``/sysroot``), so every mount in the
machine (``/proc``, ``/sys``, each cgroup controller) would show twice in its mountinfo, once
under ``/sysroot/ostree/deploy/…``. runc's ``GetCgroupMounts(true)`` (kubelet v1.20) stops
reading mountinfo after as many cgroup mounts as ``/proc/self/cgroup`` has lines, counting the
duplicates: half the controllers go missing, which ones depending on nspawn's mount order of
that boot, and a kubelet without ``memory`` or ``cpu`` never starts.
When the machine reboots (nspawn exits 133) it boots again; when it powers off (exit 0),
fails, or the supervisor gets SIGTERM/SIGINT (it asks the machine to power off first,
SIGKILL after :data:`STOP_TIMEOUT`), the supervisor exits.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from stackcheck_provisioners.base import ProvisionerError
from stackcheck_provisioners.machines.sysroot import UPSTREAM_MOUNT, default_deployment
from stackcheck_provisioners.machines.tree import OS_NAME

REBOOT_EXIT = 133  # systemd-nspawn's exit status when the container rebooted
STOP_TIMEOUT = 20.0
CGROUP_TIMEOUT = 60.0
#: a reboot loop (machine dies at once every time) stops after this many quick exits
MAX_QUICK_BOOTS = 5


def nspawn_argv(sysroot: Path, deployment: Path, netns: str, name: str, upstream: Path,
                booted_marker: Path, uuid: str | None, kubelet: bool = False,
                root: Path | None = None) -> list[str]:
    """``root``: where the deployment is bound (see :func:`boot_argv`), else its own path.
    ``kubelet``: what a kubelet needs besides (``/dev/kmsg`` and CAP_SYSLOG for its OOM
    watcher, which reads the kernel log)."""
    var = sysroot / "ostree/deploy" / OS_NAME / "var"
    argv = [
        "systemd-nspawn", "--quiet", "--boot", "--register=no", "--keep-unit",
        f"--directory={root or deployment}", f"--machine={name}",
        f"--network-namespace-path=/run/netns/{netns}",
        "--link-journal=no", "--resolv-conf=off", "--timezone=off", "--console=read-only",
        # the host netns is the machine's own: it configures it (flannel.1, docker0)
        "--capability=CAP_NET_ADMIN",
        # runc gives each container a session keyring (nspawn's filter blocks keyctl)
        "--system-call-filter=@keyring",
        f"--bind={sysroot}:/sysroot", f"--bind={sysroot}/boot:/boot", f"--bind={var}:/var",
        f"--bind-ro={deployment}/usr:/usr", f"--bind-ro={booted_marker}:/run/ostree-booted",
        f"--bind-ro={upstream}:{UPSTREAM_MOUNT}",
    ]
    if uuid:
        argv.append(f"--uuid={uuid}")
    if kubelet:
        argv += ["--capability=CAP_SYSLOG", "--bind=/dev/kmsg"]
    return argv


def boot_argv(deployment: Path, root: Path, nspawn: list[str]) -> list[str]:
    """``nspawn`` in a private mount namespace where ``deployment`` is bound on ``root``.

    The root is then no peer of the deployment's folder seen through ``/sysroot``: each mount
    shows once in the machine (``unshare`` and ``sh`` exec: the PID is nspawn's).
    """
    return ["unshare", "--mount", "--propagation=private", "/bin/sh", "-c",
            'mount --bind "$1" "$2" && shift 2 && exec "$@"', "boot",
            str(deployment), str(root), *nspawn]


class Supervisor:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stopping = False
        self.child: subprocess.Popen[bytes] | None = None

    def log(self, text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} supervisor {self.args.name}: {text}", flush=True)

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.log(f"signal {signum}: powering the machine off")
            self.child.send_signal(signal.SIGTERM)  # nspawn -b: SIGRTMIN+3 to the machine

    def boot_once(self) -> int:
        sysroot = Path(self.args.sysroot)
        deployment = default_deployment(sysroot)
        marker = Path(self.args.marker)
        marker.touch()
        root = Path(self.args.root)
        root.mkdir(exist_ok=True)
        argv = boot_argv(deployment, root, nspawn_argv(
            sysroot, deployment, self.args.netns, self.args.name, Path(self.args.upstream),
            marker, self.args.uuid, kubelet=self.args.kubelet, root=root))
        self.log(f"booting {deployment.name}")
        self.child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        threading.Thread(target=self.delegate_cgroups, args=(self.child.pid,),
                         daemon=True).start()
        while True:
            try:
                rc = self.child.wait(timeout=STOP_TIMEOUT if self.stopping else None)
                break
            except subprocess.TimeoutExpired:
                self.log(f"no power-off after {STOP_TIMEOUT:g}s: killing the machine")
                self.child.kill()
        self.log(f"systemd-nspawn exited {rc}")
        return rc

    def delegate_cgroups(self, nspawn: int) -> None:
        """Make the machine's cgroup v1 controllers writable (nspawn mounts them read-only).

        Its cgroup namespace is rooted at the machine's own subtree, so its systemd and
        Docker can make cgroups there and nowhere else (like a VM's own cgroup tree).
        """
        deadline = time.monotonic() + CGROUP_TIMEOUT
        while time.monotonic() < deadline and not self.stopping:
            init = _container_init(nspawn)
            mounts = _cgroup_mounts(init) if init else []
            if mounts:
                failed = [m for m in mounts if subprocess.run(
                    ["nsenter", "-t", str(init), "-m", "mount", "-o", "remount,bind,rw", m],
                    capture_output=True).returncode != 0]
                self.log("cgroup controllers writable in the machine" if not failed
                         else f"could not make writable: {', '.join(failed)}")
                return
            time.sleep(0.1)
        self.log(f"cgroup controllers not found within {CGROUP_TIMEOUT:g}s")

    def run(self) -> int:
        quick = 0
        while not self.stopping:
            started = time.monotonic()
            try:
                rc = self.boot_once()
            except ProvisionerError as exc:
                self.log(f"cannot boot: {exc}")
                return 2
            if self.stopping or rc != REBOOT_EXIT:
                return 0 if rc in (0, REBOOT_EXIT) else rc
            quick = quick + 1 if time.monotonic() - started < 5 else 0
            if quick >= MAX_QUICK_BOOTS:
                self.log(f"{quick} reboots within 5 s each: giving up")
                return 3
            self.log("rebooting into the default deployment")
        return 0


def _container_init(nspawn: int) -> int | None:
    """The machine's PID 1 (a child of nspawn whose innermost PID is 1)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if (fields.get("PPid", "").strip() == str(nspawn)
                and fields.get("NSpid", "").split()[-1:] == ["1"]):
            return int(proc.name)
    return None


def _cgroup_mounts(pid: int) -> list[str]:
    """Read-only cgroup v1 controller mounts under /sys/fs/cgroup in ``pid``'s namespace."""
    out = []
    try:
        lines = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        pre, _, post = line.partition(" - ")
        fields = pre.split()
        if (post.split()[:1] == ["cgroup"] and fields[4].startswith("/sys/fs/cgroup/")
                and "ro" in fields[5].split(",")):
            out.append(fields[4])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stackcheck_provisioners.machines.supervisor")
    parser.add_argument("--sysroot", required=True)
    parser.add_argument("--netns", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--marker", required=True, help="empty file bound on /run/ostree-booted")
    parser.add_argument("--root", required=True,
                        help="empty folder the deployment is bound on (the machine's root)")
    parser.add_argument("--uuid")
    parser.add_argument("--kubelet", action="store_true",
                        help="give the machine what a kubelet needs (/dev/kmsg, CAP_SYSLOG)")
    sup = Supervisor(parser.parse_args(argv))
    signal.signal(signal.SIGTERM, sup.on_signal)
    signal.signal(signal.SIGINT, sup.on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return sup.run()


if __name__ == "__main__":
    sys.exit(main())
