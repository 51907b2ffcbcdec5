"""The linearizability checker against a catalogue of histories with known verdicts."""

from __future__ import annotations

import math
import random

import pytest

from stackcheck.etcd.linearizability import History, Op, check, check_history

INF = math.inf


def w(value: str, call: float, ret: float, client: str = "c1", key: str = "k",
      outcome: str = "ok") -> Op:
    return Op("write", value, call, INF if outcome == "unknown" else ret, outcome, client, key)


def r(value: str | None, call: float, ret: float, client: str = "c2", key: str = "k") -> Op:
    return Op("read", value, call, ret, "ok", client, key)


def cas(expect: str | None, new: str, call: float, ret: float, *, swapped: bool | None = True,
        seen: str | None = None, client: str = "c3", key: str = "k", outcome: str = "ok") -> Op:
    return Op("cas", new, call, INF if outcome == "unknown" else ret, outcome, client, key,
              expect=expect, swapped=swapped if outcome == "ok" else None, seen=seen)


def history(*ops: Op, initial: str | None = None) -> History:
    return History(initial=initial, ops=list(ops))


#: name -> (history, linearizable?)
CATALOGUE: dict[str, tuple[History, bool]] = {
    "sequential": (history(w("a", 0, 1), r("a", 2, 3), w("b", 4, 5), r("b", 6, 7)), True),
    "empty key reads absent": (history(r(None, 0, 1)), True),
    "concurrent read may see either": (history(w("a", 0, 10), r(None, 1, 2), r("a", 3, 4)),
                                       True),
    "stale read": (history(w("a", 0, 1), w("b", 2, 3), r("a", 4, 5)), False),
    "lost acknowledged write": (history(w("a", 0, 1), w("b", 2, 3), r("a", 10, 11),
                                        r("b", 12, 13)), False),
    "read of a value never written": (history(w("a", 0, 1), r("zzz", 2, 3)), False),
    "flip-flop": (history(w("a", 0, 1), w("b", 0.5, 10), r("b", 2, 3), r("a", 4, 5),
                          r("b", 6, 7)), False),
    "concurrent writes, reads agree on one order": (
        history(w("a", 0, 10, "c1"), w("b", 0, 10, "c2"), r("a", 11, 12), r("a", 13, 14)), True),
    "unknown write never seen": (history(w("a", 0, 1), w("x", 2, 3, outcome="unknown"),
                                         r("a", 5, 6)), True),
    "unknown write seen late": (history(w("a", 0, 1), w("x", 2, 3, outcome="unknown"),
                                        r("a", 5, 6), r("x", 70, 71)), True),
    "unknown write seen then unseen": (history(w("a", 0, 1), w("x", 2, 3, outcome="unknown"),
                                               r("x", 5, 6), r("a", 7, 8)), False),
    "failed write has no effect": (history(w("a", 0, 1), w("x", 2, 3, outcome="fail"),
                                           r("a", 5, 6)), True),
    "cas swaps the current value": (history(w("a", 0, 1), cas("a", "b", 2, 3), r("b", 4, 5)),
                                    True),
    "cas on a stale value swapped": (history(w("a", 0, 1), w("b", 2, 3), cas("a", "c", 4, 5)),
                                     False),
    "concurrent cas, both swap the same value": (
        history(w("a", 0, 1), cas("a", "b", 2, 5, client="c1"), cas("a", "c", 2, 5, client="c2")),
        False),
    "concurrent cas, one swaps, the other sees its value": (
        history(w("a", 0, 1), cas("a", "b", 2, 5, client="c1"),
                cas("a", "c", 2, 5, swapped=False, seen="b", client="c2")), True),
    "cas that did not swap saw a stale value": (
        history(w("a", 0, 1), w("b", 2, 3), cas("x", "c", 4, 5, swapped=False, seen="a")), False),
    "cas that did not swap though the value matched": (
        history(w("a", 0, 1), cas("a", "c", 4, 5, swapped=False, seen="a")), False),
    "unknown cas seen": (history(w("a", 0, 1), cas("a", "b", 2, 3, outcome="unknown"),
                                 r("b", 9, 10)), True),
    "keys are independent registers": (
        history(w("a", 0, 1, key="k1"), w("b", 0, 1, key="k2"), r("a", 2, 3, key="k1"),
                r("b", 2, 3, key="k2")), True),
    "a stale read on one key of two": (
        history(w("a", 0, 1, key="k1"), w("b", 2, 3, key="k1"), r("x", 0, 1, key="k2"),
                w("x", 0, 0.5, key="k2"), r("a", 4, 5, key="k1")), False),
}


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_catalogue(name: str) -> None:
    h, expected = CATALOGUE[name]
    verdict = check_history(h)
    assert verdict.ok is expected, verdict.explanation
    assert verdict.explanation.startswith("linearizable" if expected else "not linearizable")


def test_violation_names_the_operation_and_the_members() -> None:
    h = history(w("a", 0, 1, "c1@h1"), w("b", 2, 3, "c2@h2"), r("a", 4, 5, "c3@h3"))
    verdict = check_history(h)
    assert verdict.ok is False
    assert verdict.culprit is not None and verdict.culprit.client == "c3@h3"
    assert verdict.members == ["c2@h2", "c3@h3"]
    assert verdict.explanation.startswith("not linearizable: c3@h3 read k -> 'a' [4.000-5.000s, ok]"
                                          " fits no order")
    assert "when the key held 'b' (written by c2@h2 write k 'b'" in verdict.explanation


def test_explosive_history_is_undecided_never_passed() -> None:
    """Many concurrent writes never read, then reads that fit no order: the search must
    try many orders; with a small bound it gives up and says so."""
    ops = [w(f"v{i}", 0, 100, f"c{i}") for i in range(14)]
    ops += [r(f"v{i}", 101 + i, 101.5 + i) for i in range(14)]
    ops += [r("v0", 200, 201)]
    verdict = check_history(history(*ops), max_steps=2000)
    assert verdict.ok is None
    assert verdict.explanation.startswith("undecided: gave up after 2000 search steps on key k")
    assert check(history(*ops), max_steps=2000)[0] is False


def test_history_round_trips_through_json() -> None:
    h = history(w("a", 0, 1), w("x", 2, 3, outcome="unknown"), r("a", 4, 5))
    again = History.from_dict(h.to_dict())
    assert again.ops == h.ops
    assert check(again)[0]


def test_recording_api() -> None:
    h = History()
    failed_read = h.call("read", key="k", client="c1")
    h.fail(failed_read, error="timeout")
    write = h.call("write", "v1", key="k", client="c1")
    h.ok(write)
    swap = h.call("cas", "v2", key="k", client="c2", expect="v1")
    h.ok(swap, swapped=True)
    miss = h.call("cas", "v3", key="k", client="c2", expect="v1")
    h.ok(miss, "v2", swapped=False)
    lost = h.call("write", "v4", key="k", client="c1")
    h.fail(lost, error="timeout")
    assert lost.outcome == "unknown" and failed_read.outcome == "fail"
    assert h.acknowledged_writes() == ["v1", "v2"]
    assert check(h)[0]
    assert '"outcome": "fail"' in h.to_json()


def brute_force(h: History) -> bool:
    """Linearizable by trying every order (unknown ops optional, any return time)."""
    from itertools import combinations, permutations

    from stackcheck.etcd.linearizability import _step

    ops = [op for op in h.ops if op.outcome == "ok" or (op.outcome == "unknown"
                                                         and op.kind != "read")]
    required = [op for op in ops if op.outcome == "ok"]
    optional = [op for op in ops if op.outcome == "unknown"]
    for k in range(len(optional) + 1):
        for chosen in combinations(optional, k):
            for order in permutations(required + list(chosen)):
                if any(b.ret < a.call for i, a in enumerate(order) for b in order[i + 1:]):
                    continue  # b returned before a was called, yet a is placed first
                states = {}
                fits = True
                for op in order:
                    ok, states[op.key] = _step(op, states.get(op.key, h.initial))
                    if not ok:
                        fits = False
                        break
                if fits:
                    return True
    return False


def random_history(rng: random.Random, n: int) -> History:
    """Small random histories over 2 keys and 3 values, many of them not linearizable."""
    ops = []
    for i in range(n):
        call = rng.randrange(10)
        ret = call + 1 + rng.randrange(4)
        key = rng.choice(["k", "j"])
        roll = rng.random()
        outcome = "unknown" if roll < 0.15 else "ok"
        if roll < 0.45:
            ops.append(w(f"v{i}", call, ret, f"c{i}", key, outcome))
        elif roll < 0.8:
            ops.append(r(rng.choice([None, *(o.value for o in ops if o.kind != "read")]),
                         call, ret, f"c{i}", key))
        else:
            expect = rng.choice([None, *(o.value for o in ops if o.kind != "read")])
            if rng.random() < 0.5 or outcome == "unknown":
                ops.append(cas(expect, f"v{i}", call, ret, client=f"c{i}", key=key,
                               outcome=outcome))
            else:
                seen = rng.choice([None, *(o.value for o in ops if o.kind != "read")])
                ops.append(cas(expect, f"v{i}", call, ret, swapped=False, seen=seen,
                               client=f"c{i}", key=key))
    return history(*ops)


def test_agrees_with_brute_force_on_random_small_histories() -> None:
    rng = random.Random(20)
    verdicts = {True: 0, False: 0}
    for _ in range(400):
        h = random_history(rng, rng.randrange(1, 7))
        expected = brute_force(h)
        assert check_history(h).ok is expected, h.to_json()
        verdicts[expected] += 1
    assert min(verdicts.values()) > 50, verdicts  # both verdicts well represented
