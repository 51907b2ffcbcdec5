"""Claims: what a check reads or disrupts, held as file locks across xdist workers and threads.

The rule set, in one place (:func:`claims_for`):

=====================  =====================================================================
kind                   claims
=====================  =====================================================================
``reads-host``         ``lab`` shared, ``host:<h>`` shared (an ordinary check on one host)
``reads-lab``          ``lab`` shared, every ``host:*`` shared (an ordinary check on the lab)
``host``               ``lab`` shared, ``host:<h>`` exclusive; if ``<h>`` is an etcd
                       member also ``etcd`` shared and one of ``tolerance`` ``etcd-quorum``
                       slots (a per-host disruptive check: upgrade/reboot/rollback of a host)
``etcd-layer``         ``lab`` shared, ``etcd`` exclusive, ``host:<m>`` exclusive for every
                       etcd member (the etcd quorum scenarios)
``lab``                ``lab`` exclusive (a disruptive check that declares nothing, and every
                       disruptive check under ``--serial-disruptive``)
``shares-lab``         ``lab`` shared (an ordinary check under ``--serial-disruptive``)
=====================  =====================================================================

So an atomic cycle on a host that is no etcd member conflicts with nothing but checks on its
own host and the lab-wide readers (the data path, which uses every host), not even with an
etcd scenario; cycles of etcd members hold a quorum slot, so at most ``tolerance`` members
are down at once, and never run beside an etcd scenario. Locks are taken in one
global order (:func:`order`), so holders of several never deadlock; each lock prefers
writers (:mod:`stackcheck.locks`); a reader takes its claims all at once or none, so it
never holds a host a disruptive check waits for while it waits for another.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from stackcheck.lab import Host, Lab
from stackcheck.locks import LockCancelled, LockTimeout, lab_lock

SHARED, EXCLUSIVE, SLOT = "shared", "exclusive", "slot"
KINDS = ("reads-host", "reads-lab", "host", "etcd-layer", "lab", "shares-lab")
LAB, ETCD, QUORUM = "lab", "etcd", "etcd-quorum"


@dataclass(frozen=True, order=True)
class Claim:
    resource: str  # "lab", "etcd", "etcd-quorum", "host:h1"
    mode: str  # shared, exclusive, or slot (one of ``capacity`` holders)
    capacity: int = 0

    def __str__(self) -> str:
        extra = f" (1 of {self.capacity})" if self.mode == SLOT else ""
        return f"{self.resource} {self.mode}{extra}"


def host_resource(name: str) -> str:
    return f"host:{name}"


def claims_for(kind: str, lab: Lab, host: Host | None = None) -> list[Claim]:
    """The claims of a check of ``kind`` (on ``host`` for the per-host kinds)."""
    if kind not in KINDS:
        raise ValueError(f"unknown claim kind {kind!r}; expected one of {', '.join(KINDS)}")
    if kind in ("reads-host", "host") and host is None:
        raise ValueError(f"a {kind!r} claim needs a host")
    if kind == "lab":
        return [Claim(LAB, EXCLUSIVE)]
    out = [Claim(LAB, SHARED)]
    if kind == "shares-lab":
        return out
    if kind == "reads-lab":
        out += [Claim(host_resource(h.name), SHARED) for h in lab.hosts]
    elif kind == "reads-host":
        out.append(Claim(host_resource(host.name), SHARED))  # type: ignore[union-attr]
    elif kind == "host":
        assert host is not None
        out.append(Claim(host_resource(host.name), EXCLUSIVE))
        if host.has_role("etcd"):
            out += [Claim(ETCD, SHARED), Claim(QUORUM, SLOT, max(1, lab.failure_tolerance))]
    else:  # etcd-layer
        out.append(Claim(ETCD, EXCLUSIVE))
        out += [Claim(host_resource(h.name), EXCLUSIVE) for h in lab.hosts_with("etcd")]
    return sorted(out, key=order)


def order(claim: Claim) -> tuple[int, str]:
    """The one order every holder takes its locks in: lab, etcd, quorum slots, hosts."""
    rank = {LAB: 0, ETCD: 1, QUORUM: 2}.get(claim.resource, 3)
    return rank, claim.resource


def conflict(a: Claim, b: Claim) -> bool:
    """Two claims that may not be held at once (slots are counted, see :func:`violations`)."""
    if a.resource != b.resource or a.mode == SLOT or b.mode == SLOT:
        return False
    return EXCLUSIVE in (a.mode, b.mode)


def _file(lock_dir: Path, resource: str) -> Path:
    return lock_dir / (resource.replace(":", "_").replace("/", "_") + ".lock")


@contextlib.contextmanager
def _slot(lock_dir: Path, claim: Claim, deadline: float,
          cancelled: Callable[[], bool] | None) -> Iterator[int]:
    """Hold one of ``claim.capacity`` slot files exclusively; yields its number."""
    handles = []
    try:
        while True:
            for n in range(claim.capacity):
                handle = open(_file(lock_dir, f"{claim.resource}.{n}"), "a+")  # noqa: SIM115
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    continue
                handles.append(handle)
                yield n
                return
            if time.monotonic() > deadline:
                raise LockTimeout(f"no free {claim.resource} slot of {claim.capacity}")
            if cancelled is not None and cancelled():
                raise LockCancelled(f"gave up waiting for a {claim.resource} slot")
            time.sleep(0.05)
    finally:
        for handle in handles:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


@contextlib.contextmanager
def hold(claims: Sequence[Claim], lock_dir: Path, timeout: float = 3600,
         cancelled: Callable[[], bool] | None = None) -> Iterator[None]:
    """Hold every claim (in the global order) for the ``with`` block; waiting stops with
    :class:`LockCancelled` once ``cancelled()`` says so."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    if all(c.mode == SHARED for c in claims):
        with _all_at_once(sorted(claims, key=order), lock_dir, deadline, cancelled):
            yield
        return
    with contextlib.ExitStack() as stack:
        for claim in sorted(claims, key=order):
            left = max(0.0, deadline - time.monotonic())
            if claim.mode == SLOT:
                stack.enter_context(_slot(lock_dir, claim, deadline, cancelled))
            else:
                stack.enter_context(lab_lock(_file(lock_dir, claim.resource),
                                             exclusive=claim.mode == EXCLUSIVE, timeout=left,
                                             cancelled=cancelled))
        yield


@contextlib.contextmanager
def _all_at_once(claims: Sequence[Claim], lock_dir: Path, deadline: float,
                 cancelled: Callable[[], bool] | None) -> Iterator[None]:
    """Shared claims, all or none: each is tried without waiting; if one is busy, the ones
    taken are let go, and only once that one is free are they all tried again. A reader of
    many hosts (the data-path pods, a lab-wide check) held some while it waited for a host
    being rebooted, and so kept the etcd members' cycles, queued on a host it held, waiting
    for every other host's cycle."""
    while True:
        busy = None
        with contextlib.ExitStack() as stack:
            for claim in claims:
                try:
                    stack.enter_context(lab_lock(_file(lock_dir, claim.resource),
                                                 exclusive=False, timeout=0))
                except LockTimeout:
                    busy = claim
                    break
            if busy is None:
                yield
                return
        left = deadline - time.monotonic()
        if left <= 0:
            raise LockTimeout(f"no shared {busy.resource} lock after waiting for it")
        with lab_lock(_file(lock_dir, busy.resource), exclusive=False, timeout=left,
                      cancelled=cancelled):
            pass  # free now (holding nothing else meanwhile): try them all again


# --- the record: who held what, when ---------------------------------------------------------

@dataclass(frozen=True)
class Held:
    """One holding of claims, as the timeline file keeps it (wall-clock seconds)."""

    check: str
    claims: list[str]
    asked: float
    start: float
    end: float
    worker: str

    @property
    def waited(self) -> float:
        return self.start - self.asked


def _parse(text: str) -> Claim:
    resource, mode, *rest = text.split(" ")
    capacity = int(rest[1]) if mode == SLOT and len(rest) > 1 else 0
    return Claim(resource, mode, capacity)


def parse_claim(text: str) -> Claim:
    """``str(claim)`` back to a Claim: ``"etcd-quorum slot (1 of 2)"``."""
    return _parse(text.replace("(1 of ", "1 ").replace(")", ""))


class Timeline:
    """Holdings appended as JSON lines to one file shared by every worker of a run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, held: Held) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(asdict(held)) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)  # one write with O_APPEND: lines never interleave
        finally:
            os.close(fd)

    def read(self) -> list[Held]:
        if not self.path.exists():
            return []
        return [Held(**json.loads(line)) for line in self.path.read_text().splitlines()
                if line.strip()]

    @contextlib.contextmanager
    def holding(self, check: str, claims: Sequence[Claim], lock_dir: Path,
                timeout: float = 3600,
                cancelled: Callable[[], bool] | None = None) -> Iterator[None]:
        """Hold ``claims`` for the block and record when they were asked, got and let go."""
        asked = time.time()
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with hold(claims, lock_dir, timeout, cancelled):
            start = time.time()
            try:
                yield
            finally:
                self.add(Held(check, [str(c) for c in claims], asked, start, time.time(),
                              worker))


def violations(held: Iterable[Held]) -> list[str]:
    """Pairs of holdings whose claims conflict yet overlapped in time, and moments when more
    slot holders than a slot resource's capacity overlapped. Empty: the rules held."""
    items = sorted(held, key=lambda h: h.start)
    found = []
    for i, a in enumerate(items):
        ca = [parse_claim(c) for c in a.claims]
        for b in items[i + 1:]:
            if b.start >= a.end:
                break
            cb = [parse_claim(c) for c in b.claims]
            clash = [f"{x} / {y}" for x in ca for y in cb if conflict(x, y)]
            if clash:
                found.append(f"{a.check} and {b.check} overlapped holding {clash[0]}")
    events = []
    for h in items:
        for c in (parse_claim(c) for c in h.claims):
            if c.mode == SLOT:
                events += [(h.start, 1, c), (h.end, -1, c)]
    count: dict[str, int] = {}
    for _, delta, c in sorted(events, key=lambda e: (e[0], e[1])):
        count[c.resource] = count.get(c.resource, 0) + delta
        if count[c.resource] > c.capacity:
            found.append(f"{count[c.resource]} holders of {c.resource} at once "
                         f"(capacity {c.capacity})")
    return found


def timeline_svg(held: Sequence[Held], width: int = 900) -> str:
    """One bar per holding on a shared time axis; exclusive claims in red, slots amber."""
    if not held:
        return "<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>"
    t0 = min(h.asked for h in held)
    span = max(max(h.end for h in held) - t0, 1e-3)
    label_w, row = 330, 18
    scale = (width - label_w - 10) / span
    rows = []
    for i, h in enumerate(sorted(held, key=lambda h: h.start)):
        y = 20 + i * row
        kinds = {parse_claim(c).mode for c in h.claims}
        colour = "#e66" if EXCLUSIVE in kinds else "#fc6" if SLOT in kinds else "#9c9"
        x_wait, x0 = label_w + (h.asked - t0) * scale, label_w + (h.start - t0) * scale
        w = max(1.0, (h.end - h.start) * scale)
        title = (f"{h.check} [{h.worker}]: waited {h.waited:.1f}s, held {h.end - h.start:.1f}s: "
                 + "; ".join(h.claims))
        esc = title.replace("&", "&amp;").replace("<", "&lt;")
        name = h.check.replace("&", "&amp;").replace("<", "&lt;")[:48]
        rows.append(
            f"<g><title>{esc}</title><text x='2' y='{y + 12}' font-size='11'>{name}</text>"
            f"<rect x='{x_wait:.1f}' y='{y + 7}' width='{max(0.0, x0 - x_wait):.1f}' "
            f"height='2' fill='#999'/><rect x='{x0:.1f}' y='{y + 2}' width='{w:.1f}' "
            f"height='{row - 4}' fill='{colour}'/></g>")
    height = 30 + len(held) * row
    axis = (f"<text x='{label_w}' y='12' font-size='11'>0 s</text><text x='{width - 60}' y='12' "
            f"font-size='11'>{span:.1f} s</text>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"font-family='sans-serif'>{axis}{''.join(rows)}</svg>")
