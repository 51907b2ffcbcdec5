"""Benchmark 4 helper: write the span of the checks (first start .. last finish) to a file.

Set ``BENCH_SPAN_FILE``; the span leaves out pytest's start-up, collection and session end,
so it holds what every check costs through the harness (fixtures, lab lock, Allure, reports).
"""

import json
import os
import time

_span: dict[str, float] = {}


def pytest_runtest_logstart(nodeid, location):
    _span.setdefault("start", time.monotonic())


def pytest_runtest_logfinish(nodeid, location):
    _span["end"] = time.monotonic()
    _span["checks"] = _span.get("checks", 0) + 1


def pytest_sessionfinish(session):
    path = os.environ.get("BENCH_SPAN_FILE")
    if path and "end" in _span and not hasattr(session.config, "workerinput"):
        with open(path, "w") as out:
            json.dump({"seconds": _span["end"] - _span["start"], "checks": _span["checks"]}, out)
