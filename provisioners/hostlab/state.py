"""The lab's state file: everything the lab created, written as it goes, under a file lock.

``<state_dir>/state.json`` is the single source of truth for teardown. Every record carries
the run id that created it. Several processes (pytest-xdist workers, the control CLI run
over SSH) may update it at once: every change is a read-modify-write under
``<state_dir>/state.lock`` and an atomic rename.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock

STATE_FILE = "state.json"
LOCK_FILE = "state.lock"
VERSION = 1

State = dict[str, Any]


def state_path(state_dir: Path) -> Path:
    return Path(state_dir) / STATE_FILE


def _lock(state_dir: Path) -> FileLock:
    return FileLock(str(Path(state_dir) / LOCK_FILE), timeout=60)


def read(state_dir: Path) -> State | None:
    """The current state, or None when no lab is recorded."""
    path = state_path(state_dir)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:
        return None


def _write(state_dir: Path, data: State) -> None:
    path = state_path(state_dir)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


@contextmanager
def edit(state_dir: Path) -> Iterator[State]:
    """Read, let the caller change, and write back the state, all under the lock."""
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    with _lock(state_dir):
        data = read(state_dir) or {}
        yield data
        _write(state_dir, data)


def new(state_dir: Path, run_id: str, lab: str, config: dict[str, Any]) -> State:
    """Start a fresh state file for a lab being built."""
    data: State = {
        "version": VERSION,
        "run_id": run_id,
        "lab": lab,
        "state_dir": str(Path(state_dir).resolve()),
        "status": "building",
        "created_at": time.time(),
        "pid": os.getpid(),
        "config": config,
        "hosts": {},
        "resources": [],
        "processes": {},
    }
    with edit(state_dir) as st:
        st.clear()
        st.update(data)
    return data


def add_resource(state_dir: Path, kind: str, name: str, **extra: Any) -> None:
    """Record one created thing (netns, link, dir, mount, cgroup) before or as it is made."""
    with edit(state_dir) as st:
        record = {"kind": kind, "name": name, "run_id": st.get("run_id"), **extra}
        if record not in st.setdefault("resources", []):
            st["resources"].append(record)


def set_process(state_dir: Path, key: str, record: dict[str, Any] | None) -> None:
    """Record (or forget, with None) the process of ``key`` = ``<host>/<service>``."""
    with edit(state_dir) as st:
        procs = st.setdefault("processes", {})
        if record is None:
            procs.pop(key, None)
        else:
            procs[key] = {**record, "run_id": st.get("run_id")}


def resources(data: State, kind: str) -> list[dict[str, Any]]:
    return [r for r in data.get("resources", []) if r.get("kind") == kind]
