"""Bounded polling. Every wait in stackcheck has a hard timeout and a short interval.

Each wait is recorded in :data:`RECORDS` (what, how long, how many polls, which test), so a
run can report its slowest waits (``fixtures/timing.py``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """A condition did not hold in time; the message says what was awaited and last seen."""


class NotYet:
    """A falsy poll result that says what was seen: ``return NotYet("h2: inactive")``.

    On a timeout, ``wait_for`` reports the last one, so a condition can explain itself
    without a separate ``describe`` callable.
    """

    def __init__(self, seen: str) -> None:
        self.seen = seen

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return self.seen

    def __repr__(self) -> str:
        return f"NotYet({self.seen!r})"


def _seen(value: object, error: Exception | None) -> str:
    """What the last poll saw, for a timeout message (never a bare "not yet")."""
    if error is not None:
        text = str(error).strip().splitlines()
        return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
    if isinstance(value, NotYet):
        return str(value)
    return f"the condition returned {value!r}"


@dataclass
class WaitRecord:
    what: str
    seconds: float
    ok: bool
    polls: int = 1
    interval: float = 0.0
    timeout: float = 0.0
    #: wall-clock (epoch) start of the wait and of its last poll
    started: float = 0.0
    last_poll: float = 0.0
    #: the pytest node id of the check that waited ("" outside pytest)
    test: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Every wait of this process, for the "slowest waits" report.
RECORDS: list[WaitRecord] = []


def current_test() -> str:
    """The pytest node id of the running check ("" outside pytest)."""
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    return current.rsplit(" (", 1)[0]  # "<nodeid> (call)" -> "<nodeid>"


def record_wait(what: str, seconds: float, ok: bool, polls: int, interval: float,
                timeout: float, started: float) -> None:
    """Record a wait done elsewhere (e.g. polled on a host by one remote command)."""
    RECORDS.append(WaitRecord(what, seconds, ok, polls, interval, timeout, started,
                              started + seconds, current_test()))


def wait_for(
    condition: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
    describe: Callable[[], str] | None = None,
    retry_errors: bool = True,
) -> T:
    """Poll ``condition`` until it returns a truthy value; raise WaitTimeout after ``timeout`` s.

    An exception from ``condition`` counts as "not yet" (reported on timeout), unless
    ``retry_errors`` is false: then it ends the wait at once. The timeout message says what
    the last poll saw: ``describe()`` if given, else the last error, else the last value
    (a :class:`NotYet` carries its own words).
    """
    __tracebackhide__ = True  # a timeout shows the check's frame, not this loop
    started = time.time()
    start = time.monotonic()
    deadline = start + timeout
    last_error: Exception | None = None
    last_value: object = None
    polls = 0

    def record(ok: bool, last_poll: float) -> None:
        RECORDS.append(WaitRecord(what, time.monotonic() - start, ok, polls, interval, timeout,
                                  started, last_poll, current_test()))

    while True:
        last_poll = time.time()
        polls += 1
        try:
            value = condition()
            if value:
                record(True, last_poll)
                return value
            last_value, last_error = value, None
        except Exception as exc:  # kept and reported on timeout, or raised (retry_errors)
            if not retry_errors:
                record(False, last_poll)
                raise
            last_error = exc
        if time.monotonic() >= deadline:
            record(False, last_poll)
            seen = describe() if describe else _seen(last_value, last_error)
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}; last seen: {seen}")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
