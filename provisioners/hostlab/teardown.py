"""Remove everything a local lab recorded in its state file — also after a crash or kill -9.

Order: kill processes (recorded PIDs checked against their start time, plus whatever runs
in the lab's cgroups or network namespaces), delete the root-side link, delete the
namespaces, unmount recorded mounts, remove cgroup dirs, clear ostree's immutable flags
and remove the recorded directories and files. Never kills by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from stackcheck_provisioners.hostlab import cgroups, kubelet, network, ostree, state
from stackcheck_provisioners.hostlab.proc import alive, reap, signal_pids, start_time

#: files of the lab in state_dir besides the recorded dirs
LAB_FILES = ("inventory.yaml", "state.json", "state.lock")
CREATE_LOCK = "create.lock"


def _lab_pids(data: state.State) -> set[int]:
    """Every live PID that belongs to the lab."""
    pids = {
        rec["pid"] for rec in data.get("processes", {}).values()
        if alive(rec.get("pid"), rec.get("start"))
    }
    if data.get("lab"):
        pids |= cgroups.lab_pids(data["lab"])
    pids |= kubelet.pod_pids(data)  # pods' containers live under the kubelets' cgroup roots
    for rec in state.resources(data, "netns"):
        pids |= network.netns_pids(rec["name"])
    me = os.getpid()
    return {p for p in pids if p != me and start_time(p) is not None}


def _foreign_netns(data: state.State) -> set[str]:
    """Recorded namespace names that exist now but are not the namespaces we made."""
    out = set()
    for rec in state.resources(data, "netns"):
        now = network.netns_inode(rec["name"])
        if now is not None and rec.get("inode") is not None and now != rec["inode"]:
            out.add(rec["name"])
    return out


def kill_all(data: state.State, timeout: float = 10) -> set[int]:
    """SIGKILL every lab process until none is left (bounded); return survivors."""
    deadline = time.monotonic() + timeout
    while True:
        pids = _lab_pids(data)
        if not pids:
            return set()
        if time.monotonic() >= deadline:
            return pids
        signal_pids(pids, signal.SIGKILL)
        time.sleep(0.05)
        reap()


def _rmtree(path: Path) -> None:
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir():
        ostree.unlock(path / "sysroot")
    try:
        shutil.rmtree(path)
    except OSError:
        subprocess.run(["chattr", "-R", "-i", str(path)], capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


def _unmount(target: str) -> None:
    mounts = Path("/proc/self/mountinfo").read_text().split("\n")
    if any(line.split(" ")[4:5] == [target] for line in mounts if line):
        subprocess.run(["umount", "-l", target], capture_output=True)


def _remove_kernel_objects(data: state.State) -> list[str]:
    """Processes, links, namespaces, mounts and cgroups of the lab; return problems."""
    problems: list[str] = []
    survivors = kill_all(data)
    if survivors:
        problems.append(f"processes still running: {sorted(survivors)}")
    for rec in state.resources(data, "link"):
        network.delete_link(rec["name"])
    for rec in reversed(state.resources(data, "netns")):
        network.delete_netns(rec["name"])
    for rec in state.resources(data, "mount"):
        _unmount(rec["name"])
    if data.get("lab"):
        left = cgroups.remove_lab_cgroups(data["lab"]) + kubelet.remove_cgroup_roots(data)
        if left:
            problems.append(f"cgroups left: {left}")
    if state.resources(data, "netns_dir"):
        network.cleanup_netns_dir()
    leftover_links = {r["name"] for r in state.resources(data, "link")} & network.root_links()
    if leftover_links:
        problems.append(f"links left: {sorted(leftover_links)}")
    leftover_ns = {r["name"] for r in state.resources(data, "netns")} & network.netns_list()
    if leftover_ns:
        problems.append(f"namespaces left: {sorted(leftover_ns)}")
    return problems


def destroy_locked(state_dir: Path | str, keep: tuple[str, ...] = ()) -> list[str]:
    """Tear down the lab recorded in ``state_dir``, the caller holding ``create.lock``.

    ``keep`` names lab files in ``state_dir`` not to delete (e.g. that lock file).
    """
    state_dir = Path(state_dir)
    data = state.read(state_dir)
    if data is None:
        return []
    with state.edit(state_dir) as st:
        st["status"] = "destroying"
    problems: list[str] = []
    if _foreign_netns(data):
        # our namespaces are gone and their names belong to another lab now (e.g. after a
        # machine restart): stop only our recorded processes, then remove our files
        for rec in data.get("processes", {}).values():
            if alive(rec.get("pid"), rec.get("start")):
                signal_pids([rec["pid"]], signal.SIGKILL)
    else:
        problems += _remove_kernel_objects(data)
    host_dirs = [Path(h["dir"]) for h in data.get("hosts", {}).values() if h.get("dir")]
    for d in host_dirs:
        _rmtree(d)
    for rec in reversed(state.resources(data, "dir")):
        _rmtree(Path(rec["name"]))
    if not problems:
        for name in set(LAB_FILES) - set(keep):
            (state_dir / name).unlink(missing_ok=True)
        journals = [*state_dir.glob("faults-*.json*"), *state_dir.glob("atomic-*.json*")]
        for journal in journals:  # stackcheck.faults and .atomic: the lab is gone
            journal.unlink(missing_ok=True)
        for d in ("locks",):
            shutil.rmtree(state_dir / d, ignore_errors=True)
        if data.get("created_state_dir"):
            with contextlib.suppress(OSError):
                state_dir.rmdir()
    return problems

