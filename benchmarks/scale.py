"""Benchmark 3: local labs of 3, 6 and 12 hosts: bring-up, teardown and full-run time.

Each round builds every lab size in turn (the order rotates), times its bring-up, runs the
full conformance run against it (traced, ``-n auto --dist loadgroup``, Allure on) in the first
``--run-repeat`` rounds, and times its teardown. Prints per host count the medians and
spreads, run time per host, the split of the run's work into disruptive checks (run alone, by
design once per host for the per-host ones) and ordinary checks, and the ping matrix check
(n*(n-1) pairs, run concurrently): its time should grow at most linearly with hosts.

Labs: ``bench`` 10.213.60.0/24, ``bench6`` 10.213.61.0/24, ``bench12`` 10.213.62.0/24
(kubernetes=false), each removed right after its round, also when interrupted.

Usage: ``.venv/bin/python benchmarks/scale.py [--hosts 3 6 12] [--repeat 3] [--run-repeat 1]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    REPO,
    Series,
    loadavg,
    local_lab,
    machine,
    pytest_argv,
    run,
    save,
    start,
)
from tracestats import summarize

PING = "test_every_pod_pings_every_other_pod"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, nargs="+", default=[3, 6, 12], choices=(3, 6, 12))
    parser.add_argument("--repeat", type=int, default=3, help="bring-ups per lab size")
    parser.add_argument("--run-repeat", type=int, default=1, help="full runs per lab size")
    parser.add_argument("--timeout", type=float, default=3600, help="per run, seconds")
    parser.add_argument("--pytest-args", default="", help="extra pytest arguments")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    facts = start()
    extra = args.pytest_args.split()
    metrics = ("bring-up", "teardown", "run", "disruptive", "ordinary", "ping matrix")
    results = {n: {m: Series(m) for m in metrics} for n in args.hosts}
    failures: dict[int, list[str]] = {n: [] for n in args.hosts}
    with tempfile.TemporaryDirectory(prefix="stackcheck-scale-") as tmp:
        work = Path(tmp)
        for round_ in range(args.repeat):
            k = round_ % len(args.hosts)
            for n in args.hosts[k:] + args.hosts[:k]:
                print(f"round {round_ + 1}/{args.repeat}: {n} hosts (load {loadavg()})",
                      flush=True)
                with local_lab(n, work / f"r{round_}") as bench:
                    results[n]["bring-up"].values.append(bench.bring_up_s)
                    print(f"  bring-up {bench.bring_up_s:.1f}s", flush=True)
                    if round_ < args.run_repeat:
                        trace = work / f"trace-{n}-{round_}"
                        timed = run(pytest_argv(bench.inventory, work / f"run-{n}",
                                                extra=["-p", "benchmarks.trace", *extra]),
                                    timeout=args.timeout,
                                    env={"STACKCHECK_TRACE": str(trace),
                                         "PYTHONPATH": str(REPO)})
                        summary = summarize(trace)
                        ping = [c["duration"] - c["lock"] for c in summary["checks"]
                                if PING in c["test"]]
                        r = results[n]
                        r["run"].values.append(timed.seconds)
                        r["disruptive"].values.append(summary["disruptive_s"])
                        r["ordinary"].values.append(summary["ordinary_s"])
                        if ping:
                            r["ping matrix"].values.append(max(ping))
                        if timed.returncode != 0:
                            failures[n].append(f"exit {timed.returncode}: {timed.tail.strip()}")
                        print(f"  run {timed.seconds:.1f}s exit {timed.returncode}", flush=True)
                results[n]["teardown"].values.append(bench.teardown_s)
        facts["load_end"] = machine()["load_start"]
    print(f"\nmachine: {facts['cpus']} x {facts['cpu']}, {facts['memory_gib']} GiB; "
          f"load {facts['load_start']} -> {facts['load_end']}; {facts['date']}")
    print("hosts  " + "  ".join(f"{m:>16}" for m in metrics) + "   run/host")
    base = args.hosts[0]
    for n in args.hosts:
        cells = [f"{s.median:7.1f} ({s.spread():>7})" if s.values else f"{'-':>16}"
                 for s in results[n].values()]
        per_host = (statistics.median(results[n]["run"].values) / n
                    if results[n]["run"].values else float("nan"))
        print(f"{n:5}  " + "  ".join(f"{c:>16}" for c in cells) + f"   {per_host:6.1f}s")
        for f in failures[n]:
            print(f"       FAILED: {f[:200]}")
    for metric in ("run", "ordinary", "ping matrix"):
        first = results[base][metric]
        for n in args.hosts[1:]:
            s = results[n][metric]
            if first.values and s.values:
                print(f"{metric} {n} vs {base} hosts: x{s.median / first.median:.2f} "
                      f"(hosts x{n / base:.0f}; pairs x{n * (n - 1) / (base * (base - 1)):.0f})")
    save(args.json, {"machine": facts, "failures": failures,
                     "results": {n: {m: vars(s) for m, s in r.items()}
                                 for n, r in results.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
