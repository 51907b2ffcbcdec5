"""Benchmark 4 helper: write each check's time and the span of all checks to a file.

Set ``BENCH_SPAN_FILE``. The span (first check's start .. last check's end) leaves out pytest's
start-up, collection and session end; per check, the host and the time from its start to its
end (setup, call, teardown and reporting: everything the harness adds).
"""

import json
import os
import time

import pytest

_checks: list[dict] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start = time.monotonic()
    try:
        return (yield)
    finally:
        callspec = getattr(item, "callspec", None)
        host = callspec.params.get("lab_host") if callspec else None
        _checks.append({"host": host, "start": start, "end": time.monotonic()})


def pytest_sessionfinish(session):
    path = os.environ.get("BENCH_SPAN_FILE")
    if path and _checks and not hasattr(session.config, "workerinput"):
        with open(path, "w") as out:
            json.dump({"seconds": _checks[-1]["end"] - _checks[0]["start"],
                       "checks": _checks}, out)
