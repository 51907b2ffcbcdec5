"""Benchmark 5: the slowest waits of a full run, and how much polling may oversleep.

Runs the conformance run (``-n auto --dist loadgroup``, Allure on, ``-p fixtures.timing``)
against a running local lab and reads the merged ``waits.json`` the timing plugin writes into
the Allure folder. Prints the 10 slowest waits (seconds, polls, interval, hard timeout, the
check) and, per wait, the most it can have slept after the condition already held: one
interval when it polled more than once (0 when the first poll succeeded).

Usage: ``.venv/bin/python benchmarks/slowest_waits.py [--repeat 1] [--inventory lab.yaml]``.
Without ``--inventory`` it builds a 3-host lab ``bench`` on 10.213.60.0/24 (kubernetes=false)
and removes it at the end, also when interrupted.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import lab_parser, loadavg, local_lab, machine, pytest_argv, run, save, start

TOP = 10


def oversleep(wait: dict) -> float:
    """The most this wait slept after its condition held (one interval, if it polled again)."""
    return wait["interval"] if wait["polls"] > 1 else 0.0


def main() -> int:
    args = lab_parser(__doc__, repeat=1, timeout=1800).parse_args()
    facts = start()
    runs = []
    with tempfile.TemporaryDirectory(prefix="stackcheck-waits-") as tmp:
        work = Path(tmp)
        with local_lab(args.hosts, work, inventory=args.inventory) as bench:
            for i in range(args.repeat):
                print(f"run {i + 1}/{args.repeat} (load {loadavg()})", flush=True)
                out = work / f"run{i}"
                timed = run(pytest_argv(bench.inventory, out,
                                        extra=["-p", "stackcheck_fixtures.timing",
                                               *args.pytest_args.split()]),
                            timeout=args.timeout)
                waits_file = out / "allure-results" / "waits.json"
                waits = json.loads(waits_file.read_text()) if waits_file.exists() else []
                runs.append({"seconds": timed.seconds, "exit": timed.returncode,
                             "waits": waits})
                print(f"  {timed.seconds:.1f}s, exit {timed.returncode}, {len(waits)} waits",
                      flush=True)
        facts["load_end"] = machine()["load_start"]
    print(f"\nmachine: {facts['cpus']} x {facts['cpu']}, {facts['memory_gib']} GiB; "
          f"load {facts['load_start']} -> {facts['load_end']}; {facts['date']}")
    for i, r in enumerate(runs, 1):
        waits = r["waits"]
        total = sum(w["seconds"] for w in waits)
        slack = sum(oversleep(w) for w in waits)
        print(f"\nrun {i}: {r['seconds']:.1f}s (exit {r['exit']}); {len(waits)} waits, "
              f"{total:.1f}s waited; at most {slack:.1f}s slept after a condition held; "
              f"{sum(not w['ok'] for w in waits)} timed out")
        print(f"  {'seconds':>8} {'polls':>5} {'every':>6} {'timeout':>7} {'oversleep':>9}  "
              "what  [check]")
        for w in waits[:TOP]:
            test = w["test"].split("::", 1)[-1] if w["test"] else "-"
            flag = "" if w["ok"] else "  TIMED OUT"
            print(f"  {w['seconds']:8.2f} {w['polls']:5d} {w['interval']:5g}s {w['timeout']:6g}s "
                  f"{oversleep(w):8g}s  {w['what']}  [{test}]{flag}")
    save(args.json, {"machine": facts, "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
