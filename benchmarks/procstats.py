"""Resource use of a running pytest run: per process (controller, each xdist worker) the peak
threads, open file descriptors, resident memory and SSH connections, sampled from /proc.

``Sampler(pid)`` samples the process tree under ``pid`` every ``interval`` seconds in a
thread; ``peaks()`` gives the per-process maxima. Linux only; needs to see the processes
(root, or the same user).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass
class Peak:
    pid: int
    role: str  # "controller" (pytest's main process) or "worker" (an xdist worker)
    threads: int = 0
    fds: int = 0
    rss_mib: float = 0.0
    ssh: int = 0  # established TCP connections to port 22


def _children(pid: int) -> list[int]:
    out = []
    for task in (PROC / str(pid) / "task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += _children(p)
    return seen


def _status(pid: int) -> dict[str, str]:
    lines = (PROC / str(pid) / "status").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _ssh_inodes(pid: int) -> set[str]:
    """Socket inodes of established TCP connections to remote port 22, in pid's netns."""
    found = set()
    for name in ("tcp", "tcp6"):
        try:
            rows = (PROC / str(pid) / "net" / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[2].endswith(":0016") and cols[3] == "01":
                found.add(cols[9])
    return found


def sample(pid: int) -> dict | None:
    """Threads, fds, RSS and SSH connections of one process (None if it is gone)."""
    try:
        status = _status(pid)
        fds = list((PROC / str(pid) / "fd").iterdir())
        socks = {str(f.readlink())[8:-1] for f in fds
                 if str(f.readlink()).startswith("socket:[")}
        cmdline = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return {"threads": int(status["Threads"]), "fds": len(fds),
            "rss_mib": int(status["VmRSS"].split()[0]) / 1024,
            "ssh": len(socks & _ssh_inodes(pid)), "pytest": b"pytest" in b" ".join(cmdline),
            "worker": b"python" in cmdline[0] and b"-c" in cmdline}


class Sampler:
    """Samples the pytest processes under ``root`` (itself included) until stopped; keeps
    each one's peaks. xdist workers are ``python -c ...`` children of the controller."""

    def __init__(self, root: int, interval: float = 0.5) -> None:
        self.root, self.interval = root, interval
        self.found: dict[int, Peak] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for pid in tree(self.root):
                seen = sample(pid)
                if not seen or not (seen["pytest"] or seen["worker"]):
                    continue
                role = "worker" if seen["worker"] else "controller"
                peak = self.found.setdefault(pid, Peak(pid, role))
                peak.threads = max(peak.threads, seen["threads"])
                peak.fds = max(peak.fds, seen["fds"])
                peak.rss_mib = max(peak.rss_mib, seen["rss_mib"])
                peak.ssh = max(peak.ssh, seen["ssh"])
            self._stop.wait(self.interval)

    def peaks(self) -> list[Peak]:
        return sorted(self.found.values(), key=lambda p: p.pid)


def table(peaks: list[Peak]) -> str:
    rows = ["| process | threads | fds | RSS MiB | SSH connections |", "|---|---|---|---|---|"]
    rows += [f"| {p.role} | {p.threads} | {p.fds} | {p.rss_mib:.0f} | {p.ssh} |"
             for p in peaks]
    return "\n".join(rows)


if __name__ == "__main__":  # ``procstats.py PID``: sample until the process ends
    import sys
    import time

    root = int(sys.argv[1])
    with Sampler(root) as sampler:
        while (PROC / str(root)).exists():
            time.sleep(0.5)
    print(table(sampler.peaks()))
