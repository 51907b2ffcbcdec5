"""Run one long build command: output to a log file, heartbeats, elapsed time, peak memory."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stackcheck_builders.kubernetes.errors import K8sBuildError
from stackcheck_builders.kubernetes.progress import Progress

TAIL_LINES = 15
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class RunStats:
    """What one command cost. Memory in bytes; 0 when it could not be measured."""

    seconds: float
    peak_rss: int  # largest single process (from /usr/bin/time -v)
    peak_tree_rss: int  # the whole process tree at once (sampled from /proc each second)


def tree_rss(root: int) -> int:
    """Resident memory of ``root`` and all its descendants, in bytes."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        parent[pid], rss[pid] = int(fields[1]), int(fields[21]) * _PAGE
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(child for child, ppid in parent.items() if ppid == pid)
    return total


def tail(log: Path, lines: int = TAIL_LINES) -> str:
    """The last non-empty lines of a log, indented, for an error message."""
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("  " + line for line in [t for t in text if t.strip()][-lines:])


def _max_rss(time_report: Path) -> int:
    try:
        for line in time_report.read_text().splitlines():
            if "Maximum resident set size" in line:
                return int(line.rsplit(":", 1)[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def run_logged(
    argv: Sequence[str],
    *,
    title: str,
    log: Path,
    progress: Progress,
    env: Mapping[str, str],
    cwd: Path | None = None,
) -> RunStats:
    """Run ``argv`` to completion with its output in ``log``; raise K8sBuildError on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    time_report = log.with_suffix(".time")
    timer = shutil.which("time", path="/usr/bin")
    full = [timer, "-v", "-o", str(time_report), *argv] if timer else list(argv)
    started = time.monotonic()
    next_beat = started + progress.heartbeat
    peak_tree = 0
    with open(log, "w") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        try:
            proc = subprocess.Popen(
                full, cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        except OSError as exc:
            raise K8sBuildError(f"{title}: cannot run {argv[0]}: {exc.strerror}") from None
        try:
            while proc.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=1)
                current = tree_rss(proc.pid)
                peak_tree = max(peak_tree, current)
                now = time.monotonic()
                if now >= next_beat and proc.returncode is None:
                    progress.beat(title, now - started, current)
                    next_beat = now + progress.heartbeat
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    stats = RunStats(time.monotonic() - started, _max_rss(time_report), peak_tree)
    if proc.returncode != 0:
        raise K8sBuildError(
            f"{title} failed (exit status {proc.returncode}); full log: {log}\n{tail(log)}"
        )
    return stats
