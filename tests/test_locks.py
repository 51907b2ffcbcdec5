"""The lab lock: ordinary checks share it; a waiting disruptive check goes before new ones."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from stackcheck.locks import lab_lock


def _hold(path: Path, name: str, exclusive: bool, delay: float, hold: float, log) -> None:
    time.sleep(delay)
    with lab_lock(path, exclusive=exclusive):
        log.put((name, "in", time.monotonic()))
        time.sleep(hold)
        log.put((name, "out", time.monotonic()))


def _run(path: Path, plan: list[tuple[str, bool, float, float]]) -> dict[str, tuple[float, float]]:
    ctx = multiprocessing.get_context("fork")
    log = ctx.Queue()
    procs = [ctx.Process(target=_hold, args=(path, *step, log)) for step in plan]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    spans: dict[str, dict[str, float]] = {}
    while not log.empty():
        name, what, at = log.get()
        spans.setdefault(name, {})[what] = at
    return {name: (s["in"], s["out"]) for name, s in spans.items()}


def test_readers_share_and_a_waiting_writer_goes_before_new_readers(tmp_path: Path) -> None:
    spans = _run(tmp_path / "lab.lock", [
        ("reader1", False, 0.0, 1.0),
        ("reader2", False, 0.1, 0.3),  # shares with reader1
        ("writer", True, 0.3, 0.5),    # waits for both readers
        ("reader3", False, 0.6, 0.2),  # arrives while the writer waits: goes after it
    ])
    assert set(spans) == {"reader1", "reader2", "writer", "reader3"}
    r1, r2, w, r3 = spans["reader1"], spans["reader2"], spans["writer"], spans["reader3"]
    assert r2[0] < r1[1], "two ordinary checks should hold the lock together"
    assert w[0] >= max(r1[1], r2[1]), "the disruptive check started before the others ended"
    assert r3[0] >= w[1], "a check that arrived while the disruptive one waited went first"
