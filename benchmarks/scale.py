"""Benchmark 3: local labs of 3 to 48 hosts: bring-up, teardown, runs, and resource use.

Each round builds every lab size in turn (the order rotates), times its bring-up, runs the
non-disruptive suites (``-m "not disruptive"``) against it and, for the sizes in
``--full-hosts``, the full conformance run (both traced, ``-n auto --dist loadgroup``, Allure
on) in the first ``--run-repeat`` rounds, and times its teardown. Prints per host count the
medians and spreads, run time per host, the ping matrix and path-MTU checks (n·(n-1) pairs
each, bounded concurrency), the growth factors against the smallest size, and per pytest
process of the non-disruptive run the peak threads, file descriptors, resident memory and
SSH connections (``procstats.py``).

Labs: ``bench`` 10.213.60.0/24, ``bench6`` .61, ``bench12`` .62, ``bench24`` .63,
``bench48`` .64 (kubernetes=false), each removed right after its round, also when
interrupted; ``--subnet-base 10.214.192.0 --name-prefix r19b`` puts them elsewhere (sizes in
consecutive /24s from the base).

Usage: ``.venv/bin/python benchmarks/scale.py [--hosts 3 12 24 48] [--full-hosts 3 12]
[--repeat 1] [--run-repeat 1]``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
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
from procstats import Peak, Sampler, table
from tracestats import summarize

SIZES = (3, 6, 12, 24, 48)
LABS = {3: ("bench", "10.213.60.0/24"), 6: ("bench6", "10.213.61.0/24"),
        12: ("bench12", "10.213.62.0/24"), 24: ("bench24", "10.213.63.0/24"),
        48: ("bench48", "10.213.64.0/24")}
CHECKS = {"ping matrix": "test_every_pod_pings_every_other_pod",
          "path MTU": "test_path_mtu_is_the_flannel_mtu"}
METRICS = ("bring-up", "teardown", "non-disruptive", "full run", "full serial", "disruptive",
           "disruptive serial", "ordinary", *CHECKS)
#: goals of issue 27: full run with rolling waves / with --serial-disruptive, per host count
WAVE_GOALS = {12: 0.5, 48: 0.3}


def lab_options(n: int, base: str | None, prefix: str) -> dict[str, str]:
    if base is None:
        name, subnet = LABS[n]
    else:
        net = ipaddress.IPv4Network(f"{base}/24", strict=False)
        name = f"{prefix}{n}"
        subnet = str(ipaddress.IPv4Network((int(net.network_address) + 256 * SIZES.index(n),
                                            24)))
    return {"name": name, "subnet": subnet}


def traced_run(inventory: Path, work: Path, tag: str, extra: list[str], timeout: float,
               sample: bool = False) -> tuple[object, dict, list[Peak]]:
    trace = work / f"trace-{tag}"
    argv = pytest_argv(inventory, work / f"run-{tag}",
                       extra=["-p", "benchmarks.trace", *extra])
    env = {"STACKCHECK_TRACE": str(trace), "PYTHONPATH": str(REPO)}
    if sample:
        with Sampler(os.getpid()) as sampler:
            timed = run(argv, timeout=timeout, env=env)
        peaks = sampler.peaks()
    else:
        timed, peaks = run(argv, timeout=timeout, env=env), []
    return timed, summarize(trace), peaks


def check_time(summary: dict, name: str) -> float | None:
    found = [c["duration"] - c["lock"] for c in summary["checks"] if name in c["test"]]
    return max(found) if found else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, nargs="+", default=[3, 12, 24, 48], choices=SIZES)
    parser.add_argument("--full-hosts", type=int, nargs="*", default=[3, 12], choices=SIZES,
                        help="sizes that also get a full (disruptive) run")
    parser.add_argument("--repeat", type=int, default=1, help="bring-ups per lab size")
    parser.add_argument("--run-repeat", type=int, default=1, help="runs per lab size")
    parser.add_argument("--timeout", type=float, default=3600, help="per run, seconds")
    parser.add_argument("--pytest-args", default="", help="extra pytest arguments")
    parser.add_argument("--subnet-base", help="first /24 of the labs (else the bench ranges)")
    parser.add_argument("--name-prefix", default="bench", help="with --subnet-base")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--no-serial", action="store_true",
                        help="skip the full run with --serial-disruptive (the one before "
                             "claims and rolling waves) next to each full run")
    parser.add_argument("--no-non-disruptive", action="store_true",
                        help="skip the non-disruptive run")
    args = parser.parse_args()
    facts = start()
    extra = args.pytest_args.split()
    results = {n: {m: Series(m) for m in METRICS} for n in args.hosts}
    peaks: dict[int, list[Peak]] = {}
    failures: dict[int, list[str]] = {n: [] for n in args.hosts}
    with tempfile.TemporaryDirectory(prefix="stackcheck-scale-") as tmp:
        work = Path(tmp)
        for round_ in range(args.repeat):
            k = round_ % len(args.hosts)
            for n in args.hosts[k:] + args.hosts[:k]:
                print(f"round {round_ + 1}/{args.repeat}: {n} hosts (load {loadavg()})",
                      flush=True)
                options = lab_options(n, args.subnet_base, args.name_prefix)
                with local_lab(n, work / f"r{round_}-{n}", options) as bench:
                    r = results[n]
                    r["bring-up"].values.append(bench.bring_up_s)
                    print(f"  bring-up {bench.bring_up_s:.1f}s", flush=True)
                    tag = f"{n}-{round_}"
                    if round_ < args.run_repeat and not args.no_non_disruptive:
                        timed, summary, seen = traced_run(
                            bench.inventory, work, f"nd-{tag}",
                            ["-m", "not disruptive", *extra], args.timeout, sample=True)
                        r["non-disruptive"].values.append(timed.seconds)
                        peaks.setdefault(n, seen)
                        for metric, name in CHECKS.items():
                            if (t := check_time(summary, name)) is not None:
                                r[metric].values.append(t)
                        if timed.returncode != 0:
                            failures[n].append(f"non-disruptive exit {timed.returncode}: "
                                               f"{timed.tail.strip()}")
                        print(f"  non-disruptive {timed.seconds:.1f}s exit {timed.returncode}"
                              f" (load {loadavg()})", flush=True)
                    if round_ < args.run_repeat and n in args.full_hosts:
                        variants = [("full run", "disruptive", [])]
                        if not args.no_serial:
                            variants.append(("full serial", "disruptive serial",
                                             ["--serial-disruptive"]))
                        if round_ % 2:
                            variants.reverse()  # interleaved: the order rotates each round
                        for metric, part, flags in variants:
                            timed, summary, _ = traced_run(
                                bench.inventory, work, f"{metric.replace(' ', '-')}-{tag}",
                                [*flags, *extra], args.timeout)
                            r[metric].values.append(timed.seconds)
                            r[part].values.append(summary["disruptive_s"])
                            if not flags:
                                r["ordinary"].values.append(summary["ordinary_s"])
                            if timed.returncode != 0:
                                failures[n].append(f"{metric} exit {timed.returncode}: "
                                                   f"{timed.tail.strip()}")
                            last = (timed.tail.strip().splitlines() or [""])[-1][:120]
                            print(f"  {metric} {timed.seconds:.1f}s exit {timed.returncode} "
                                  f"{last} (load {loadavg()})", flush=True)
                results[n]["teardown"].values.append(bench.teardown_s)
                print(f"  teardown {bench.teardown_s:.1f}s", flush=True)
        facts["load_end"] = machine()["load_start"]
    print(f"\nmachine: {facts['cpus']} x {facts['cpu']}, {facts['memory_gib']} GiB; "
          f"load {facts['load_start']} -> {facts['load_end']}; {facts['date']}")
    print("hosts  " + "  ".join(f"{m:>16}" for m in METRICS) + "   nd/host")
    base = args.hosts[0]
    for n in args.hosts:
        cells = [f"{s.median:7.1f} ({s.spread():>7})" if s.values else f"{'-':>16}"
                 for s in results[n].values()]
        nd = results[n]["non-disruptive"].values
        per_host = statistics.median(nd) / n if nd else float("nan")
        print(f"{n:5}  " + "  ".join(f"{c:>16}" for c in cells) + f"   {per_host:6.2f}s")
        for f in failures[n]:
            print(f"       FAILED: {f[:300]}")
    for metric in ("bring-up", "teardown", "non-disruptive", "full run", *CHECKS):
        first = results[base][metric]
        for n in args.hosts[1:]:
            s = results[n][metric]
            if first.values and s.values:
                print(f"{metric} {n} vs {base} hosts: x{s.median / first.median:.2f} "
                      f"(hosts x{n / base:.0f}; pairs x{n * (n - 1) / (base * (base - 1)):.0f})")
    for n in args.hosts:
        waves, serial = results[n]["full run"], results[n]["full serial"]
        if waves.values and serial.values:
            goal, got = WAVE_GOALS.get(n), waves.median / serial.median
            verdict = (f"goal <= {goal}: {'met' if got <= goal else 'missed'}" if goal
                       else "no goal at this size")
            print(f"full run {n} hosts, rolling waves / --serial-disruptive: "
                  f"{waves.median:.1f}s / {serial.median:.1f}s = "
                  f"{waves.median / serial.median:.2f} ({verdict})")
    for n, found in peaks.items():
        print(f"\nresources of the non-disruptive run, {n} hosts (peaks per process):")
        print(table(found))
    save(args.json, {"machine": facts, "failures": failures,
                     "peaks": {n: [vars(p) for p in found] for n, found in peaks.items()},
                     "results": {n: {m: vars(s) for m, s in r.items()}
                                 for n, r in results.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
