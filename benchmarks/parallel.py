"""Benchmark 2: does ``pytest -n auto`` pay? The same full run with ``-n 0``, ``-n 2``, ``-n auto``.

Runs the conformance run (``--dist loadgroup``, Allure results on) against one running local
lab, interleaved, ``--repeat`` times per variant, and prints medians and the wall-time ratios
against ``-n 0`` (goal: ``-n auto`` / ``-n 0`` <= 0.6 on 2 cores). Disruptive checks run alone by
design, so the best possible ratio is (disruptive + ordinary / workers) / (disruptive +
ordinary), printed too, from a traced ``-n auto`` run (``--trace``, on by default).

Usage: ``.venv/bin/python benchmarks/parallel.py [--repeat 3] [--hosts 3|6|12]
[--variants 0 auto 0:serial auto:serial]`` (``:serial``: with ``--serial-disruptive``, the
behaviour before claims and rolling waves, measured side by side).
Without ``--inventory`` it builds a 3-host lab ``bench`` on 10.213.60.0/24 (kubernetes=false)
and removes it at the end, also when interrupted.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
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

GOAL = 0.6


def auto_workers() -> int:
    """What ``-n auto`` means here: one worker per CPU plus one (``fixtures/lab.py``)."""
    import os

    return len(os.sched_getaffinity(0)) + 1


def label(spec: str) -> str:
    """``auto:serial`` -> ``-n auto --serial-disruptive``."""
    workers, _, mode = spec.partition(":")
    return f"-n {workers}" + (" --serial-disruptive" if mode == "serial" else "")


def main() -> int:
    parser = lab_parser(__doc__, repeat=3, timeout=1800)
    parser.add_argument("--variants", nargs="+", default=["0", "auto", "0:serial", "auto:serial"],
                        help="worker counts; ':serial' adds --serial-disruptive (every "
                             "disruptive check alone, one host at a time)")
    parser.add_argument("--no-trace", action="store_true", help="skip the traced run")
    args = parser.parse_args()
    facts = start()
    extra = args.pytest_args.split()
    with tempfile.TemporaryDirectory(prefix="stackcheck-parallel-") as tmp:
        work = Path(tmp)
        with local_lab(args.hosts, work, inventory=args.inventory) as bench:
            summary = None
            if not args.no_trace:
                print(f"traced -n auto run (load {facts['load_start']})", flush=True)
                trace = work / "trace"
                traced = run(pytest_argv(bench.inventory, work / "traced",
                                         extra=["-p", "benchmarks.trace", *extra]),
                             timeout=args.timeout,
                             env={"STACKCHECK_TRACE": str(trace), "PYTHONPATH": str(REPO)})
                print(f"  {traced.seconds:.1f}s, exit {traced.returncode}", flush=True)
                summary = summarize(trace)

            def variant(spec: str):
                workers, _, mode = spec.partition(":")
                flags = ["--serial-disruptive"] if mode == "serial" else []
                return lambda: run(pytest_argv(bench.inventory, work / f"n{workers}{mode}",
                                               workers=workers, extra=[*flags, *extra]),
                                   timeout=args.timeout)

            series = interleaved({label(v): variant(v) for v in args.variants}, args.repeat)
        facts["load_end"] = machine()["load_start"]
    base = series.get("-n 0")
    print(f"\nmachine: {facts['cpus']} x {facts['cpu']}, {facts['memory_gib']} GiB; "
          f"-n auto = {auto_workers()} workers; load {facts['load_start']} -> "
          f"{facts['load_end']}; {facts['date']}")
    ratios = {}
    for name, s in series.items():
        ratios[name] = ratio(s.median, base.median) if base else float("nan")
        fails = f"  FAILED {len(s.failures)}x: {s.failures[0][:200]}" if s.failures else ""
        print(f"{name:28} median {s.median:7.1f}s  spread {s.spread()}s  n={len(s.values)}  "
              f"/ -n 0 = {ratios[name]:.2f}{fails}")
    print(f"goal: -n auto / -n 0 <= {GOAL} (issue 27: never above 1.0)")
    for workers in ("0", "auto"):
        waves, serial = series.get(label(workers)), series.get(label(f"{workers}:serial"))
        if waves and serial and waves.values and serial.values:
            print(f"-n {workers}: rolling waves / --serial-disruptive = "
                  f"{ratio(waves.median, serial.median):.2f}")
    serial0, serialauto = series.get(label("0:serial")), series.get(label("auto:serial"))
    if serial0 and serialauto and serial0.values and serialauto.values:
        print(f"--serial-disruptive: -n auto / -n 0 = "
              f"{ratio(serialauto.median, serial0.median):.2f}")
    bound = None
    if summary:
        d, o = summary["disruptive_s"], summary["ordinary_s"]
        workers = auto_workers()
        bound = ratio(d + o / workers, d + o)
        print(f"\nbound from the trace: disruptive {d:.1f}s run alone, ordinary {o:.1f}s over "
              f"{workers} workers -> best -n auto / -n 0 = {bound:.2f} (pytest start-up not "
              "counted)")
        print_summary(summary, top=10)
    save(args.json, {"machine": facts, "series": {k: vars(v) for k, v in series.items()},
                     "ratios": ratios, "bound": bound,
                     "trace_summary": {k: v for k, v in (summary or {}).items()
                                       if k != "checks"}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
