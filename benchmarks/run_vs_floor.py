"""Benchmark 1: the whole conformance run against its floor, on a running local lab.

1. One traced run (``-p benchmarks.trace``, not timed) records every SSH command, etcd HTTP call
   and local command the checks make, per xdist worker and check.
2. Then, interleaved, ``--repeat`` times each:
   * run: ``pytest -n auto --dist loadgroup --alluredir=... --inventory=<lab>`` (untraced);
   * floor: ``benchmarks/replay.py`` replays the trace with no pytest: one SSH connection per
     host, one HTTP session per etcd endpoint, the run's own concurrency (see replay.py).
Prints the medians, their ratio (goal <= 1.5) and where the traced run's time went.

Usage: ``.venv/bin/python benchmarks/run_vs_floor.py [--repeat 3] [--inventory lab.yaml]``.
Without ``--inventory`` it builds a 3-host lab ``bench`` on 10.213.60.0/24 (kubernetes=false)
and removes it at the end, also when interrupted.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    PYTHON,
    REPO,
    interleaved,
    lab_parser,
    local_lab,
    machine,
    pytest_argv,
    ratio,
    run,
    save,
    start,
)
from tracestats import print_summary, summarize

GOAL = 1.5


def main() -> int:
    args = lab_parser(__doc__, repeat=3, timeout=1200).parse_args()
    facts = start()
    with tempfile.TemporaryDirectory(prefix="stackcheck-floor-") as tmp:
        work = Path(tmp)
        with local_lab(args.hosts, work, inventory=args.inventory) as bench:
            extra = args.pytest_args.split()
            trace = work / "trace"
            print(f"traced run (load {facts['load_start']})", flush=True)
            traced = run(pytest_argv(bench.inventory, work / "traced",
                                     extra=["-p", "benchmarks.trace", *extra]),
                         timeout=args.timeout,
                         env={"STACKCHECK_TRACE": str(trace), "PYTHONPATH": str(REPO)})
            print(f"  {traced.seconds:.1f}s, exit {traced.returncode}", flush=True)
            replays: list[dict] = []

            def floor():
                out = work / f"replay-{len(replays)}.json"
                timed = run([PYTHON, str(REPO / "benchmarks" / "replay.py"),
                             f"--inventory={bench.inventory}", f"--json={out}", str(trace)],
                            timeout=args.timeout)
                replays.append(json.loads(out.read_text()) if out.exists() else {})
                return timed

            series = interleaved({
                "run": lambda: run(pytest_argv(bench.inventory, work / "run", extra=extra),
                                   timeout=args.timeout),
                "floor": floor,
            }, args.repeat)
            summary = summarize(trace)
        facts["load_end"] = machine()["load_start"]
    result = ratio(series["run"].median, series["floor"].median)
    print(f"\nmachine: {facts['cpus']} x {facts['cpu']}, {facts['memory_gib']} GiB; "
          f"load {facts['load_start']} -> {facts['load_end']}; {facts['date']}")
    print(f"traced run {traced.seconds:.1f}s (exit {traced.returncode}; not in the ratio)")
    for s in series.values():
        fails = f"  FAILED {len(s.failures)}x: {s.failures[0][:200]}" if s.failures else ""
        print(f"{s.name:6} median {s.median:7.1f}s  spread {s.spread()}s  "
              f"n={len(s.values)}{fails}")
    print(f"run / floor = {result:.2f} (goal <= {GOAL})")
    mismatches = sorted({m for r in replays for m in r.get("mismatches", [])})
    if mismatches:
        print(f"replay answered differently from the run {len(mismatches)}x, e.g.:")
        for m in mismatches[:5]:
            print(f"  {m}")
    print("\nwhere the traced run's time went:")
    print_summary(summary, top=10)
    save(args.json, {"machine": facts, "run": vars(series["run"]),
                     "floor": vars(series["floor"]), "ratio": result,
                     "traced_s": traced.seconds, "mismatches": mismatches,
                     "replays": replays, "trace_summary": {
                         k: v for k, v in summary.items() if k != "checks"}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
