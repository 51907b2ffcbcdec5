"""Cgroups that hold every process of a lab, so none can leak.

Each host gets ``/stackcheck-<lab>/<host>/<service>`` in one tracking hierarchy
(cgroup v1 ``pids``, or the v2 root). Every daemon moves itself there before it execs,
and its descendants (sessions, containerd, shims, containers) follow. Teardown kills
what is left in the tree and removes the directories from every hierarchy.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def tracking_root() -> Path | None:
    """The hierarchy used to track lab processes, or None if no cgroup fs is mounted."""
    if (CGROUP_ROOT / "pids" / "cgroup.procs").exists():
        return CGROUP_ROOT / "pids"
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return CGROUP_ROOT
    return None


def lab_group(lab: str) -> str:
    """The cgroup path (relative to a hierarchy root) of a whole lab."""
    return f"stackcheck-{lab}"


def service_cgroup(lab: str, host: str, service: str) -> Path | None:
    """Create (if needed) and return the tracking cgroup dir of one service of one host."""
    root = tracking_root()
    if root is None:
        return None
    path = root / lab_group(lab) / host / service
    path.mkdir(parents=True, exist_ok=True)
    return path


def _hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy root (v1 controllers, the named/unified ones, or v2)."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT]
    return [p for p in sorted(CGROUP_ROOT.iterdir()) if (p / "cgroup.procs").exists()]


def pids_in(path: Path) -> set[int]:
    """All PIDs in a cgroup dir and below it."""
    found: set[int] = set()
    if not path.is_dir():
        return found
    for dirpath, _dirs, _files in os.walk(path):
        try:
            text = (Path(dirpath) / "cgroup.procs").read_text()
        except OSError:
            continue
        found.update(int(x) for x in text.split())
    return found


def lab_pids(lab: str) -> set[int]:
    """Every PID in the lab's tracking cgroups."""
    root = tracking_root()
    return pids_in(root / lab_group(lab)) if root else set()


def remove_trees(tops: Iterable[Path], timeout: float = 5) -> list[str]:
    """Remove cgroup dir trees, deepest first, retrying busy dirs until ``timeout``;
    return the dirs left over."""
    deadline = time.monotonic() + timeout
    left: list[str] = []
    for top in tops:
        if not top.is_dir():
            continue
        dirs = sorted((Path(d) for d, _s, _f in os.walk(top)), key=lambda p: -len(p.parts))
        for d in dirs:
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() >= deadline:
                        left.append(str(d))
                        break
                    time.sleep(0.05)
    return left


def remove_lab_cgroups(lab: str, timeout: float = 5) -> list[str]:
    """Remove the lab's cgroup dirs from every hierarchy, deepest first; return leftovers."""
    return remove_trees((hier / lab_group(lab) for hier in _hierarchies()), timeout)
