"""Where a traced run's time went: per worker (checks, lab-lock waits, idle) and per check.

Usage: ``.venv/bin/python benchmarks/tracestats.py TRACE_DIR [--top 15]`` (a trace written by
``-p benchmarks.trace``). Disruptive checks are marked ``D``; "lock" is time spent waiting for
the lab lock, "ops" the time inside SSH/HTTP/local operations, "internal" testinfra's own
commands (OS detection).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def events(trace_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(Path(trace_dir).glob("trace-*.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]


def summarize(trace_dir: Path) -> dict[str, Any]:
    """Per-worker and per-check totals of a trace (seconds)."""
    evs = events(trace_dir)
    tests = [e for e in evs if e["k"] == "test"]
    if not tests:
        return {"workers": {}, "checks": [], "disruptive_s": 0.0, "ordinary_s": 0.0}
    start = min(e["t0"] for e in evs)
    end = max(e["t1"] for e in evs)
    per_test: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    # a rolling check's host threads wait for their claims side by side: only the waits of
    # the check's own thread make the worker wait
    main_thread = {t["test"]: t.get("thread") for t in tests}
    for e in evs:
        if e["k"] == "lock":
            if e.get("thread") in (None, main_thread.get(e["test"])):
                per_test[e["test"]]["lock"] += e["t1"] - e["t0"]
        elif e["k"] in ("ssh", "http", "local"):
            key = "internal" if e.get("internal") else "ops"
            per_test[e["test"]][key] += e["t1"] - e["t0"]
            per_test[e["test"]]["count"] += 1
    checks = []
    workers: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for t in tests:
        stats = per_test[t["test"]]
        duration = t["t1"] - t["t0"]
        checks.append({"test": t["test"], "worker": t["worker"], "disruptive": t["disruptive"],
                       "start": t["t0"] - start, "duration": duration,
                       "lock": stats["lock"], "ops": stats["ops"],
                       "internal": stats["internal"], "count": int(stats["count"])})
        w = workers[t["worker"]]
        w["checks"] += duration - stats["lock"]
        w["lock"] += stats["lock"]
    for w in workers.values():
        w["idle"] = (end - start) - w["checks"] - w["lock"]
    work = [c["duration"] - c["lock"] for c in checks]
    return {
        "span_s": end - start,
        "workers": {k: dict(v) for k, v in sorted(workers.items())},
        "checks": checks,
        "disruptive_s": sum(w for w, c in zip(work, checks, strict=True) if c["disruptive"]),
        "ordinary_s": sum(w for w, c in zip(work, checks, strict=True) if not c["disruptive"]),
        "internal_s": sum(c["internal"] for c in checks),
    }


def print_summary(summary: dict[str, Any], top: int = 15, out=sys.stdout) -> None:
    print(f"traced span {summary['span_s']:.1f}s; work in disruptive checks "
          f"{summary['disruptive_s']:.1f}s, in ordinary checks {summary['ordinary_s']:.1f}s; "
          f"testinfra-internal commands {summary['internal_s']:.1f}s", file=out)
    for name, w in summary["workers"].items():
        print(f"  {name}: in checks {w['checks']:6.1f}s  waiting for the lab lock "
              f"{w['lock']:6.1f}s  idle {w['idle']:6.1f}s", file=out)
    print(f"  slowest {top} checks (s):  total  lock   ops  internal  #ops", file=out)
    for c in sorted(summary["checks"], key=lambda c: -c["duration"])[:top]:
        mark = "D" if c["disruptive"] else " "
        print(f"  {c['worker']:>4} {mark} {c['duration']:6.2f} {c['lock']:5.2f} {c['ops']:5.2f} "
              f"{c['internal']:6.2f} {c['count']:5d}  {c['test'][:90]}", file=out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("trace_dir", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    print_summary(summarize(args.trace_dir), args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
