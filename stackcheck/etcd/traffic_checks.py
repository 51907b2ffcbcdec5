"""Validation of a scenario's recorded traffic: linearizability, lost writes, availability."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import pairwise

from stackcheck.etcd.linearizability import MAX_STEPS, Verdict, check_history
from stackcheck.etcd.workload import Record


def member_of(client: str) -> str:
    """``c3@h2`` -> ``h2``."""
    return client.rsplit("@", 1)[-1]


def write_times(record: Record, member: str) -> list[float]:
    """Return times of the acknowledged writes and swapping CAS through ``member``."""
    return sorted(op.ret for op in record.history.ops
                  if op.outcome == "ok" and (op.kind == "write" or op.swapped)
                  and member_of(op.client) == member)


def unavailability(record: Record, member: str) -> float:
    """The longest time (s) no write through ``member`` succeeded, not counting the fault
    windows in which it is unavailable by design (stopped, or without quorum)."""
    end = record.stopped if record.stopped is not None else time.monotonic()
    down = [(w.start, w.end if w.end is not None else end)
            for w in record.windows if member in w.down]
    points = [record.started, *write_times(record, member), end]
    worst = 0.0
    for a, b in pairwise(points):
        pieces = [(a, b)]
        for d0, d1 in down:  # cut the excused window out of the gap
            pieces = [p for x0, x1 in pieces
                      for p in ((x0, min(x1, d0)), (max(x0, d1), x1)) if p[1] > p[0]]
        worst = max([worst, *(x1 - x0 for x0, x1 in pieces)])
    return worst


@dataclass
class Findings:
    """A scenario's verdicts; ``problems`` empty means it passed."""

    verdict: Verdict
    check_seconds: float
    lost: dict[str, list[str]] = field(default_factory=dict)  # member -> acked values missing
    unavailable: dict[str, float] = field(default_factory=dict)  # member -> longest gap (s)
    bound: float = 0.0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """For the evidence: the numbers and the verdicts, as JSON."""
        return {
            "linearizability": self.verdict.explanation,
            "check seconds": round(self.check_seconds, 3),
            "operations checked": self.verdict.operations,
            "search steps": self.verdict.steps,
            "lost acknowledged writes": self.lost,
            "unavailability s (per member)": {m: round(s, 2) for m, s in self.unavailable.items()},
            "unavailability bound s": self.bound,
            "problems": self.problems,
        }


def validate(record: Record, logged: dict[str, set[str] | str], bound: float,
             max_steps: int = MAX_STEPS) -> Findings:
    """Check a scenario's traffic.

    ``logged``: per member, the write log read through it after recovery (or why it could
    not be read). ``bound``: the longest a member may refuse writes outside its fault window.
    """
    started = time.monotonic()
    verdict = check_history(record.relative(), max_steps)
    findings = Findings(verdict, time.monotonic() - started, bound=bound)
    if verdict.ok is False:
        involved = ", ".join(verdict.members) or "?"
        findings.problems.append(f"the history is {verdict.explanation} (clients involved: "
                                 f"{involved})")
    elif verdict.ok is None:
        findings.problems.append(f"linearizability {verdict.explanation}: not a pass")
    acked = set(record.history.acknowledged_writes())
    for member, values in logged.items():
        if isinstance(values, str):
            findings.problems.append(f"could not read the write log through {member} after "
                                     f"recovery: {values}")
            continue
        lost = sorted(acked - values)
        if lost:
            findings.lost[member] = lost
            findings.problems.append(
                f"{len(lost)} of {len(acked)} acknowledged writes are missing when read "
                f"through {member} after recovery: {', '.join(lost[:5])}"
                + (" …" if len(lost) > 5 else ""))
    for member in sorted({member_of(c) for c in record.clients}):
        findings.unavailable[member] = unavailability(record, member)
    slow = {m: round(s, 1) for m, s in findings.unavailable.items() if s > bound}
    if slow:
        findings.problems.append(
            f"expected every member to accept a write within {bound:g}s outside its fault "
            f"window; longest time without one (s): {slow}")
    return findings
