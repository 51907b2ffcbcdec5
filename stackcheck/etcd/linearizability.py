"""A porcupine-style linearizability checker for a map of registers (etcd keys).

Operations are recorded with their call and return times, the key they touch and the
client (member) that issued them. Kinds:

- ``write``: the key now holds ``value``.
- ``read``: the key held ``value`` (None: absent).
- ``cas``: compare-and-set. ``swapped`` True: the key held ``expect`` and now holds
  ``value``; ``swapped`` False: the key held ``seen`` (which is not ``expect``), no effect.

Outcomes: ``ok``; ``fail`` (definitely no effect: left out); ``unknown`` (a write or CAS
that timed out: it may take effect at any time after its call, or never). Written values
are unique, which lets the checker settle unknown operations up front, as etcd's robustness
tests do: one whose value nobody ever observed is dropped (it cannot change any observation),
one whose value was observed must have happened and is kept with no return time.

The search (Wing & Gong, with Lowe's memoisation, as porcupine) runs per key: keys are
independent registers, so a history is linearizable iff every key's sub-history is. It
stops after ``max_steps`` search steps per key and answers "undecided", never a pass.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

#: search steps per key before the checker gives up ("undecided"); a run's histories need
#: a few per operation (see benchmarks/linearizability.py)
MAX_STEPS = 1_000_000


@dataclass
class Op:
    kind: str  # "write", "read" or "cas"
    value: str | None  # written (or CAS new) value, or value read (None: key absent)
    call: float
    ret: float = math.inf  # inf while pending or when the outcome is unknown
    outcome: str = "pending"  # ok, fail (definitely no effect), unknown
    client: str = ""  # who issued it, e.g. "c3@h2" (client 3 through member h2)
    key: str = ""
    expect: str | None = None  # cas: the value compared against
    swapped: bool | None = None  # cas: did the compare hold
    seen: str | None = None  # cas that did not swap: the value the key held
    ended: float | None = None  # when the client gave up on an unknown op (for pictures)
    error: str = ""  # why a failed or unknown op failed

    def describe(self, since: float = 0.0) -> str:
        """``c2@h3 cas k1 'a'->'b' (swapped) [12.031-12.044s]`` for messages; times in
        seconds after ``since``."""
        if self.kind == "write":
            what = f"write {self.key} {self.value!r}"
        elif self.kind == "read":
            what = f"read {self.key} -> {self.value!r}"
        else:
            done = ("swapped" if self.swapped else f"not swapped, held {self.seen!r}"
                    ) if self.outcome == "ok" else self.outcome
            what = f"cas {self.key} {self.expect!r}->{self.value!r} ({done})"
        ret = "?" if math.isinf(self.ret) else f"{self.ret - since:.3f}"
        return f"{self.client or '?'} {what} [{self.call - since:.3f}-{ret}s, {self.outcome}]"


@dataclass
class History:
    """A thread-safe record of every client operation, all keys together."""

    initial: str | None = None  # every key's value before the first operation
    ops: list[Op] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def call(self, kind: str, value: str | None = None, client: str = "", key: str = "",
             expect: str | None = None) -> Op:
        op = Op(kind=kind, value=value, call=time.monotonic(), client=client, key=key,
                expect=expect)
        with self._lock:
            self.ops.append(op)
        return op

    def ok(self, op: Op, value: str | None = None, *, swapped: bool | None = None) -> None:
        """The op returned. A read's ``value`` is what it read; a CAS that did not swap
        passes ``swapped=False`` and the value it found as ``value``."""
        op.ret = time.monotonic()
        op.outcome = "ok"
        if op.kind == "read":
            op.value = value
        elif op.kind == "cas":
            op.swapped = bool(swapped)
            if not op.swapped:
                op.seen = value

    def fail(self, op: Op, *, definite: bool = False, error: str = "") -> None:
        """The op raised: a read has no effect; a write's outcome is unknown unless definite."""
        op.ended = time.monotonic()
        op.outcome = "fail" if (definite or op.kind == "read") else "unknown"
        op.error = error

    def acknowledged_writes(self, key: str | None = None) -> list[str]:
        """Values of acknowledged writes and swapped CAS, in call order."""
        return [op.value for op in self.ops if (key is None or op.key == key)  # type: ignore[misc]
                and op.outcome == "ok" and (op.kind == "write" or op.swapped)]

    def to_dict(self) -> dict:
        ops = [{**asdict(op), "ret": None if math.isinf(op.ret) else op.ret} for op in self.ops]
        return {"initial": self.initial, "ops": ops}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict) -> History:
        ops = [Op(**{**o, "ret": math.inf if o.get("ret") is None else o["ret"]})
               for o in data["ops"]]
        return cls(initial=data.get("initial"), ops=ops)


@dataclass
class Verdict:
    """The checker's answer: ``ok`` True (linearizable), False (not), None (undecided)."""

    ok: bool | None
    explanation: str
    #: not linearizable: the operation that fits no order, and the one that wrote the value
    #: the key held when it was tried (None: the initial value)
    culprit: Op | None = None
    last_write: Op | None = None
    operations: int = 0
    steps: int = 0

    @property
    def members(self) -> list[str]:
        """The clients involved in a violation (the culprit's, the last writer's)."""
        return sorted({op.client for op in (self.culprit, self.last_write) if op})


def _observed(ops: Iterable[Op]) -> set[str | None]:
    out: set[str | None] = set()
    for op in ops:
        if op.outcome != "ok":
            continue
        if op.kind == "read":
            out.add(op.value)
        elif op.kind == "cas":
            out.add(op.expect if op.swapped else op.seen)
    return out


def prepare(ops: Iterable[Op]) -> list[Op]:
    """The operations the search must place: acknowledged ones, plus unknown writes and CAS
    whose value someone observed (unique values: they took effect)."""
    ops = list(ops)
    observed = _observed(ops)
    kept = []
    for op in ops:
        if op.outcome == "ok":
            kept.append(op)
        elif op.outcome == "unknown" and op.kind in ("write", "cas") and op.value in observed:
            kept.append(Op(**{**asdict(op), "ret": math.inf}))
    return kept


def _writes(op: Op) -> bool:
    return op.kind == "write" or (op.kind == "cas" and
                                  (op.outcome == "unknown" or bool(op.swapped)))


def _step(op: Op, state: str | None) -> tuple[bool, str | None]:
    if op.kind == "write":
        return True, op.value
    if op.kind == "read":
        return op.value == state, state
    if op.outcome == "unknown" or op.swapped:  # an unknown CAS kept: it swapped
        return state == op.expect, op.value
    return state == op.seen and state != op.expect, state


class _Entry:
    __slots__ = ("index", "is_call", "match", "next", "op", "prev")

    def __init__(self, op: Op | None, index: int, is_call: bool) -> None:
        self.op = op
        self.index = index
        self.is_call = is_call
        self.match: _Entry | None = None
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


def _entries(ops: list[Op]) -> _Entry:
    """A doubly linked list of call and return events in time order (calls first on ties)."""
    events = []
    for i, op in enumerate(ops):
        call, ret = _Entry(op, i, True), _Entry(op, i, False)
        call.match = ret
        events += [(op.call, 0, i, call), (op.ret, 1, i, ret)]
    events.sort(key=lambda e: e[:3])
    head = _Entry(None, -1, False)
    prev = head
    for *_, entry in events:
        prev.next, entry.prev = entry, prev
        prev = entry
    return head


def _lift(entry: _Entry) -> None:
    assert entry.prev is not None and entry.match is not None and entry.match.prev is not None
    entry.prev.next = entry.next
    if entry.next:
        entry.next.prev = entry.prev
    match = entry.match
    match.prev.next = match.next  # type: ignore[union-attr]
    if match.next:
        match.next.prev = match.prev


def _unlift(entry: _Entry) -> None:
    match = entry.match
    assert match is not None and match.prev is not None and entry.prev is not None
    match.prev.next = match
    if match.next:
        match.next.prev = match
    entry.prev.next = entry
    if entry.next:
        entry.next.prev = entry


def check_key(ops: list[Op], initial: str | None, max_steps: int = MAX_STEPS) -> Verdict:
    """Is one key's (prepared) history linearizable? Porcupine's DFS with a cache of
    (set of linearized ops, state) already explored."""
    n = len(ops)
    if n == 0:
        return Verdict(True, "linearizable (0 operations)")
    head = _entries(ops)
    cache: set[tuple[int, str | None]] = set()
    calls: list[tuple[_Entry, str | None, Op | None]] = []
    state, writer = initial, None  # writer: the op that last set the state
    linearized = 0
    steps = 0
    # (depth, blocked op, state, writer) where the search got furthest
    deepest: tuple[int, Op, str | None, Op | None] = (-1, Op("read", None, -math.inf,
                                                             -math.inf), initial, None)
    entry = head.next
    while head.next is not None:
        steps += 1
        if steps > max_steps:
            return Verdict(None, f"undecided: gave up after {max_steps} search steps on key "
                                 f"{ops[0].key or '?'} ({n} operations)", operations=n,
                           steps=steps)
        assert entry is not None
        if entry.is_call:
            ok, new_state = _step(entry.op, state)  # type: ignore[arg-type]
            if ok:
                done = linearized | (1 << entry.index)
                if (done, new_state) not in cache:
                    cache.add((done, new_state))
                    calls.append((entry, state, writer))
                    if _writes(entry.op):  # type: ignore[arg-type]
                        writer = entry.op
                    state, linearized = new_state, done
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:  # a return: its op must be placed before here, and was not
            # the culprit: where the search got furthest in real time (then deepest)
            if (entry.op.ret, len(calls)) > (deepest[1].ret, deepest[0]):  # type: ignore[union-attr]
                deepest = (len(calls), entry.op, state, writer)
            if not calls:
                break
            top, state, writer = calls.pop()
            linearized &= ~(1 << top.index)
            _unlift(top)
            entry = top.next
    else:
        return Verdict(True, f"linearizable ({n} operations)", operations=n, steps=steps)
    _, culprit, held, last = deepest
    by = f"written by {last.describe()}" if last else "the initial value"
    return Verdict(
        False,
        f"not linearizable: {culprit.describe()} fits no order; at best {deepest[0]} of {n} "
        f"operations on {culprit.key or 'the key'} linearize before it, when the key held "
        f"{held!r} ({by})",
        culprit=culprit, last_write=last, operations=n, steps=steps,
    )


def check_history(history: History, max_steps: int = MAX_STEPS) -> Verdict:
    """Check every key on its own; the first violation (or undecided key) is the answer."""
    by_key: dict[str, list[Op]] = {}
    for op in history.ops:
        by_key.setdefault(op.key, []).append(op)
    total = steps = 0
    undecided: Verdict | None = None
    for key in sorted(by_key):
        verdict = check_key(prepare(by_key[key]), history.initial, max_steps)
        total += verdict.operations
        steps += verdict.steps
        if verdict.ok is False:
            return verdict
        if verdict.ok is None and undecided is None:
            undecided = verdict
    if undecided is not None:
        return undecided
    return Verdict(True, f"linearizable ({total} operations on {len(by_key)} key(s))",
                   operations=total, steps=steps)


def check(history: History, max_steps: int = MAX_STEPS) -> tuple[bool, str]:
    """(ok, explanation); an undecided history is not ok."""
    verdict = check_history(history, max_steps)
    return verdict.ok is True, verdict.explanation
