"""Processes: run commands, spawn daemons, identify them by (pid, start time), stop them.

A daemon is identified by its PID *and* its start time (``/proc/PID/stat`` field 22), so a
recycled PID is never mistaken for ours. Zombies count as dead: PID 1 on this kind of
machine reaps orphans only every ~2 s, and ``kill -0`` succeeds on a zombie.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from stackcheck_provisioners.base import ProvisionerError

#: Children this process spawned, so they can be reaped (no zombies in a long pytest run).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
_CHILDREN_LOCK = threading.Lock()

#: the checkout the lab's own helper programs import from (their PYTHONPATH)
REPO_ROOT = Path(__file__).resolve().parents[2]

BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
}


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: str | None = None,
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a short command; on failure raise ProvisionerError with its stderr."""
    try:
        result = subprocess.run(
            list(argv), input=input, capture_output=True, text=True, timeout=timeout,
            env=dict(env) if env is not None else None,
        )
    except subprocess.TimeoutExpired:
        raise ProvisionerError(f"timed out after {timeout:g}s: {' '.join(argv)}") from None
    if check and result.returncode != 0:
        err = (result.stderr or result.stdout).strip().splitlines()
        last = err[-1] if err else f"exit status {result.returncode}"
        raise ProvisionerError(f"command failed: {' '.join(argv)}: {last}")
    return result


def start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks, or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def alive(pid: int | None, start: int | None) -> bool:
    """True if the process we recorded as (pid, start) still runs (not a zombie, not reused)."""
    if not pid:
        return False
    reap()
    now = start_time(pid)
    return now is not None and (start is None or now == start)


def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str],
    cgroup: Path | None = None,
) -> tuple[int, int]:
    """Start a detached daemon; return (pid, start time). The PID is the daemon's own.

    With ``cgroup``, the process first moves itself into that cgroup and then execs,
    so it and all its descendants can be found there later.
    """
    cmd = list(argv)
    if cgroup is not None:
        cmd = ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(cgroup), *cmd]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        child = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env={**BASE_ENV, **env}, start_new_session=True, close_fds=True,
        )
    with _CHILDREN_LOCK:
        _CHILDREN[child.pid] = child
    start = start_time(child.pid)
    if start is None:
        child.poll()
        raise ProvisionerError(f"{argv[0]} exited at once; see {log}")
    return child.pid, start


def reap() -> None:
    """Collect exited children of this process."""
    with _CHILDREN_LOCK:
        for pid, child in list(_CHILDREN.items()):
            if child.poll() is not None:
                del _CHILDREN[pid]


def signal_pids(pids: Iterable[int], sig: int) -> None:
    """Send ``sig`` to each PID, ignoring those already gone. Never our own PID."""
    me = os.getpid()
    for pid in pids:
        if pid in (me, 1):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def wait_gone(check: Callable[[], bool], timeout: float) -> bool:
    """Poll ``check()`` (True while something still runs) until False or timeout."""
    deadline = time.monotonic() + timeout
    while True:
        reap()
        if not check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def stop(pid: int, start: int | None, timeout: float = 10) -> bool:
    """SIGTERM the recorded process, SIGKILL it after ``timeout``; True if it is gone."""
    if not alive(pid, start):
        return True
    signal_pids([pid], signal.SIGTERM)
    if wait_gone(lambda: alive(pid, start), timeout):
        return True
    if alive(pid, start):
        signal_pids([pid], signal.SIGKILL)
    return wait_gone(lambda: alive(pid, start), 5)


def log_tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])
