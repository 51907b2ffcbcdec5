"""Processes of the control plane: started in their own session, tracked by PID file.

Every process gets ``SC_OS_BASE=<base>`` in its environment; teardown stops the recorded
process groups, then any process whose environment carries exactly that marker (daemons such
as epmd that leave their group). Nothing is ever matched by program name.
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
    if pidfile.exists():
        pid = int(pidfile.read_text())
        if alive(pid) and _marked(pid, base):
            return pid
    cmd = (["ip", "netns", "exec", netns] if netns else []) + list(argv)
    log = open(base / "log" / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env or env_for(base), start_new_session=True, cwd=base)
    log.close()
    pidfile.write_text(str(proc.pid))
    return proc.pid


def check_running(base: Path, name: str) -> str | None:
    """None when NAME runs, else the last lines of its log."""
    pidfile = base / "run" / f"{name}.pid"
    if pidfile.exists() and alive(int(pidfile.read_text())):
        return None
    return f"{name} is not running; log tail: {log_tail(base, name)}"


def log_tail(base: Path, name: str, lines: int = 3) -> str:
    path = base / "log" / f"{name}.log"
    if not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace").strip().splitlines()[-lines:]
    return " | ".join(line.strip()[:200] for line in text)


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_all(base: Path, timeout: float = 20.0) -> list[str]:
    """Stop every recorded process group, then any leftover marked process; returns names."""
    stopped = []
    run = base / "run"
    groups: dict[int, str] = {}
    for pidfile in sorted(run.glob("*.pid")) if run.exists() else []:
        pid = int(pidfile.read_text() or 0)
        if pid and alive(pid) and _marked(pid, base):
            groups[pid] = pidfile.stem
        pidfile.unlink()
    for pgid in groups:
        _kill_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in groups):
        time.sleep(0.3)
    for pgid in groups:
        _kill_group(pgid, signal.SIGKILL)
    stopped += list(groups.values())
    for pid in marked_pids(base):
        try:
            os.kill(pid, signal.SIGKILL)
            stopped.append(f"pid {pid}")
        except ProcessLookupError:
            pass
    return stopped


def marked_pids(base: Path) -> list[int]:
    own = os.getpid()
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and int(p.name) != own and _marked(int(p.name), base)]


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
