"""A small Wing-Gong / porcupine-style linearizability checker for one register.

Operations are recorded with their call and return times. An operation whose outcome
is unknown (a write that timed out) may have taken effect at any point after its call,
or never: it is *optional* and has no return time. Failed reads have no effect and are
left out of the history.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import asdict, dataclass, field


@dataclass
class Op:
    kind: str  # "write" or "read"
    value: str | None  # written value, or value read (None: key absent)
    call: float
    ret: float = math.inf  # inf while pending or when the outcome is unknown
    outcome: str = "pending"  # ok, fail (definitely no effect), unknown
    client: str = ""


@dataclass
class History:
    """A thread-safe record of every client operation on one register."""

    initial: str | None = None
    ops: list[Op] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def call(self, kind: str, value: str | None = None, client: str = "") -> Op:
        op = Op(kind=kind, value=value, call=time.monotonic(), client=client)
        with self._lock:
            self.ops.append(op)
        return op

    def ok(self, op: Op, value: str | None = None) -> None:
        op.ret = time.monotonic()
        op.outcome = "ok"
        if op.kind == "read":
            op.value = value

    def fail(self, op: Op, *, definite: bool = False) -> None:
        """The op raised: a read has no effect; a write's outcome is unknown unless definite."""
        op.outcome = "fail" if (definite or op.kind == "read") else "unknown"

    def acknowledged_writes(self) -> list[str]:
        return [op.value for op in self.ops if op.kind == "write" and op.outcome == "ok"]

    def to_json(self) -> str:
        ops = [{**asdict(op), "ret": None if math.isinf(op.ret) else op.ret} for op in self.ops]
        return json.dumps({"initial": self.initial, "ops": ops}, indent=1)


def check(history: History) -> tuple[bool, str]:
    """Is the history linearizable for a register? Returns (ok, explanation)."""
    ops = [op for op in history.ops if op.outcome in ("ok", "unknown") and
           not (op.kind == "read" and op.outcome != "ok")]
    required = [i for i, op in enumerate(ops) if op.outcome == "ok"]
    n = len(ops)
    seen: set[tuple[int, str | None]] = set()
    best: list[int] = []

    def search(done: int, state: str | None, order: list[int]) -> bool:
        nonlocal best
        if all(done >> i & 1 for i in required):
            return True
        if (done, state) in seen:
            return False
        seen.add((done, state))
        if len(order) > len(best):
            best = list(order)
        horizon = min(ops[i].ret for i in required if not done >> i & 1)
        for i in range(n):
            if done >> i & 1 or ops[i].call > horizon:
                continue
            op = ops[i]
            if op.kind == "read" and op.value != state:
                continue
            nxt = op.value if op.kind == "write" else state
            order.append(i)
            if search(done | 1 << i, nxt, order):
                return True
            order.pop()
        return False

    if search(0, history.initial, []):
        return True, f"linearizable ({len(ops)} operations)"
    stuck = [i for i in range(n) if i not in best and ops[i].outcome == "ok"]
    first = ops[min(stuck, key=lambda i: ops[i].call)] if stuck else None
    detail = f"; first operation that fits no order: {asdict(first)}" if first else ""
    return False, f"not linearizable: longest valid prefix has {len(best)} of {n} ops{detail}"
