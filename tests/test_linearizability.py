"""The register linearizability checker, on hand-made histories."""

from __future__ import annotations

import math

from stackcheck.linearizability import History, Op, check


def history(*ops: Op, initial: str | None = None) -> History:
    return History(initial=initial, ops=list(ops))


def test_sequential_history_is_linearizable() -> None:
    h = history(Op("write", "a", 0, 1, "ok"), Op("read", "a", 2, 3, "ok"),
                Op("write", "b", 4, 5, "ok"), Op("read", "b", 6, 7, "ok"))
    assert check(h)[0]


def test_stale_read_is_caught() -> None:
    h = history(Op("write", "a", 0, 1, "ok"), Op("write", "b", 2, 3, "ok"),
                Op("read", "a", 4, 5, "ok"))
    ok, why = check(h)
    assert not ok
    assert "not linearizable" in why


def test_concurrent_ops_may_order_either_way() -> None:
    h = history(Op("write", "a", 0, 10, "ok"), Op("read", None, 1, 2, "ok"),
                Op("read", "a", 3, 4, "ok"))
    assert check(h)[0]


def test_unknown_write_may_take_effect_late_or_never() -> None:
    late = history(Op("write", "a", 0, 1, "ok"), Op("write", "x", 2, math.inf, "unknown"),
                   Op("read", "a", 5, 6, "ok"), Op("read", "x", 7, 8, "ok"))
    never = history(Op("write", "a", 0, 1, "ok"), Op("write", "x", 2, math.inf, "unknown"),
                    Op("read", "a", 5, 6, "ok"))
    assert check(late)[0]
    assert check(never)[0]


def test_lost_acknowledged_write_is_caught() -> None:
    h = history(Op("write", "a", 0, 1, "ok"), Op("write", "b", 2, 3, "ok"),
                Op("read", "a", 10, 11, "ok"), Op("read", "b", 12, 13, "ok"))
    assert not check(h)[0]


def test_failed_reads_are_ignored_and_history_serializes() -> None:
    h = History()
    op = h.call("read")
    h.fail(op)
    w = h.call("write", "v1")
    h.ok(w)
    assert check(h)[0]
    assert '"outcome": "fail"' in h.to_json()
