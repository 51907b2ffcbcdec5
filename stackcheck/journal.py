"""A journal on disk: one JSON value in a file, read and changed under a file lock.

Several xdist workers, and a later run after a crash, read the same file; every change is
read-modify-write under ``<file>.lock``. The fault journal (stopped services) and the atomic
journal (where each host started) are both built on it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

from stackcheck.lab import Lab

LOCK_TIMEOUT = 30.0  # s


def journal_file(lab: Lab, root: Path, kind: str) -> Path:
    """``<kind>-<lab>.json`` in the lab's state folder (else ``<root>/.stackcheck/faults``)."""
    base = lab.state_dir if lab.state_dir else root / ".stackcheck" / "faults"
    return Path(base) / f"{kind}-{lab.name}.json"


class JsonJournal:
    """A JSON value in ``path``; ``empty`` is its value while the file does not exist."""

    def __init__(self, path: Path, empty: Any, *, keep_empty: bool = True,
                 indent: int | None = None) -> None:
        self.path = path
        self._empty = empty
        self._keep_empty = keep_empty  # False: an empty value removes the file
        self._indent = indent
        self._lock = FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT)

    def _read(self) -> Any:
        return json.loads(self.path.read_text()) if self.path.exists() else type(self._empty)()

    def _write(self, data: Any) -> None:
        if not data and not self._keep_empty:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(data, indent=self._indent, sort_keys=True))

    @contextlib.contextmanager
    def edit(self) -> Iterator[Any]:
        """``with journal.edit() as data:`` change ``data`` in place; written back on exit."""
        with self._lock:
            data = self._read()
            yield data
            self._write(data)

    def read(self) -> Any:
        """The current value (read under the lock)."""
        with self._lock:
            return self._read()
