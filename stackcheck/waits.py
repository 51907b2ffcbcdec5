"""Bounded polling. Every wait in stackcheck has a hard timeout and a short interval."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """A condition did not hold in time; the message says what was awaited and last seen."""


@dataclass
class WaitRecord:
    what: str
    seconds: float
    ok: bool


#: Every wait of this process, for the "slowest waits" report.
RECORDS: list[WaitRecord] = []


def wait_for(
    condition: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
    describe: Callable[[], str] | None = None,
) -> T:
    """Poll ``condition`` until it returns a truthy value; raise WaitTimeout after ``timeout`` s."""
    start = time.monotonic()
    deadline = start + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                RECORDS.append(WaitRecord(what, time.monotonic() - start, True))
                return value
        except Exception as exc:  # noqa: BLE001 - kept and reported on timeout
            last_error = exc
        if time.monotonic() >= deadline:
            RECORDS.append(WaitRecord(what, time.monotonic() - start, False))
            seen = describe() if describe else (repr(last_error) if last_error else "not yet")
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}; last seen: {seen}")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
