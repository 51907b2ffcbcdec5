"""Cross-process reader/writer lock: ordinary checks share it, disruptive ones own it."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path


class LockTimeout(TimeoutError):
    pass


@contextlib.contextmanager
def lab_lock(path: Path, *, exclusive: bool, timeout: float = 3600) -> Iterator[None]:
    """Hold ``path`` shared (ordinary check) or exclusive (disruptive check) across workers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    kind = "exclusive" if exclusive else "shared"
                    raise LockTimeout(f"no {kind} lab lock on {path} after {timeout:g}s") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
