"""Cross-process reader/writer lock: ordinary checks share it, disruptive ones own it.

Writers are preferred: while a disruptive check waits for the lock, no new ordinary check
takes it (they queue on a gate file), so the disruptive check runs as soon as the checks in
flight finish instead of waiting until no other worker has work left.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


class LockTimeout(TimeoutError):
    pass


class LockCancelled(RuntimeError):
    pass


def _flock(handle: IO[str], mode: int, deadline: float, what: str,
           cancelled: Callable[[], bool] | None = None) -> None:
    while True:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise LockTimeout(what) from None
            if cancelled is not None and cancelled():
                raise LockCancelled(f"gave up waiting: {what.split(' after ')[0]}") from None
            time.sleep(0.05)


@contextlib.contextmanager
def lab_lock(path: Path, *, exclusive: bool, timeout: float = 3600,
             cancelled: Callable[[], bool] | None = None) -> Iterator[None]:
    """Hold ``path`` shared (ordinary check) or exclusive (disruptive check) across workers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    kind = "exclusive" if exclusive else "shared"
    what = f"no {kind} lab lock on {path} after {timeout:g}s"
    deadline = time.monotonic() + timeout
    with open(path, "a+") as handle:
        with open(path.with_name(path.name + ".gate"), "a+") as gate:
            _flock(gate, mode, deadline, what, cancelled)  # a waiting writer holds the gate
            try:
                _flock(handle, mode, deadline, what, cancelled)
            finally:
                fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
