"""Processes of the control plane: started in their own session, tracked by PID file.

A PID file holds the PID and the kernel's start time of the process (so a reused PID is
never mistaken for ours). Every process starts a session of its own and gets
``SC_OS_BASE=<base>`` in its environment; teardown stops every process of the recorded
sessions (workers included), then any process whose environment carries exactly that marker
(daemons such as epmd that start their own session; services that rewrite their process title
also clobber their environment, hence the sessions). Nothing is ever matched by program name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

MARKER = "SC_OS_BASE"
PYTHON = "/usr/bin/python3"  # Debian's OpenStack packages live in its dist-packages


def py_main(module: str, prog: str) -> list[str]:
    """argv that runs ``module.main()`` under Debian's python as program ``prog``."""
    code = (f"import sys; sys.argv[0] = {prog!r}; from {module} import main; "
            "sys.exit(main())")
    return [PYTHON, "-c", code]


def env_for(base: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(base), "LANG": "C.UTF-8",
           MARKER: str(base)}
    env.update(extra or {})
    return env


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name ([0] is the state)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return []


def start_time(pid: int) -> str:
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""


def session(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[3]) if len(fields) > 3 else -1


def recorded(pidfile: Path) -> int | None:
    """The PID of a PID file if that very process still runs."""
    try:
        pid_text, started = pidfile.read_text().split()
    except (OSError, ValueError):
        return None
    pid = int(pid_text)
    return pid if alive(pid) and start_time(pid) == started else None


def _marked(pid: int, base: Path) -> bool:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"{MARKER}={base}".encode() in env


def start(base: Path, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None,
          netns: str | None = None) -> int:
    """Start ``argv`` (in ``netns`` if given), logging to log/NAME.log; returns its PID."""
    pidfile = base / "run" / f"{name}.pid"
    pid = recorded(pidfile)
    if pid is not None:
        return pid
    cmd = (["ip", "netns", "exec", netns] if netns else []) + list(argv)
    log = open(base / "log" / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env or env_for(base), start_new_session=True, cwd=base)
    log.close()
    pidfile.write_text(f"{proc.pid} {start_time(proc.pid)}")
    return proc.pid


def check_running(base: Path, name: str) -> str | None:
    """None when NAME runs, else the last lines of its log."""
    if recorded(base / "run" / f"{name}.pid") is not None:
        return None
    return f"{name} is not running; log tail: {log_tail(base, name)}"


def log_tail(base: Path, name: str, lines: int = 3) -> str:
    path = base / "log" / f"{name}.log"
    if not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace").strip().splitlines()[-lines:]
    return " | ".join(line.strip()[:200] for line in text)


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _members(sessions: set[int], base: Path) -> list[int]:
    """Running processes in one of ``sessions`` or carrying this base's marker."""
    own = os.getpid()
    return [pid for pid in _all_pids() if pid != own and alive(pid)
            and (session(pid) in sessions or _marked(pid, base))]


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def stop_all(base: Path, timeout: float = 20.0) -> list[str]:
    """Stop the processes of every recorded session and any marked one; returns names."""
    run = base / "run"
    sessions: dict[int, str] = {}
    for pidfile in sorted(run.glob("*.pid")) if run.exists() else []:
        pid = recorded(pidfile)
        if pid is not None:
            sessions[pid] = pidfile.stem
        pidfile.unlink()
    members = _members(set(sessions), base)
    _signal(members, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _members(set(sessions), base):
        time.sleep(0.3)
    left = _members(set(sessions), base)
    _signal(left, signal.SIGKILL)
    others = sorted(set(members) - set(sessions))
    return list(sessions.values()) + ([f"{len(others)} more process(es)"] if others else [])


def wait_for(what: str, check: Callable[[], str | None], timeout: float,
             interval: float = 1.0, fatal: Callable[[], str | None] | None = None) -> None:
    """Poll ``check`` (None = ready, else what it saw) until ready; bounded.

    ``fatal`` (None = fine) ends the wait at once, e.g. when the process died.
    """
    deadline, seen = time.monotonic() + timeout, "nothing yet"
    while True:
        dead = fatal() if fatal else None
        if dead:
            raise RuntimeError(f"{what}: {dead}")
        result = check()
        if result is None:
            return
        seen = result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not ready within {timeout:g}s; last saw: {seen}")
        time.sleep(interval)


def tcp_open(host: str, port: int) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or exc}"


def run(argv: Sequence[str], base: Path, what: str, timeout: float = 600,
        env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """Run a one-shot command, logging to log/setup.log; raise with its output's tail."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          env=env or env_for(base), cwd=cwd or base)
    with open(base / "log" / "setup.log", "a") as log:
        log.write(f"== {what} (rc={proc.returncode})\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"{what} failed (rc={proc.returncode}): {tail[:600]}")
    return proc.stdout
