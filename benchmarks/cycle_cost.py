"""Benchmark: the CPU and SSH cost of one disruptive check on one host of a local lab.

Runs one check (by default the atomic upgrade/reboot/rollback cycle) on one host of a running
local lab (``stackcheck lab up``), ``-n 0``, traced (``benchmarks/trace.py``), and reports for
the check's own run protocol (setup, call, teardown; not the session around it):

* SSH: commands run (``exec``), of them testinfra's own, and connections opened;
* CPU seconds (user + system) of the pytest process (its threads and children), and of the
  host's side: every process of that host (its sshd, the sessions and commands it forks, the
  services a reboot restarts, the lab's control CLI doing the reboot), counted through a
  ``cpuacct`` cgroup the host's processes are moved into for the measurement and taken out of
  afterwards (cgroup v1 ``cpuacct``; the lab's own tracking lives in the ``pids`` hierarchy).

Usage: ``.venv/bin/python benchmarks/cycle_cost.py --inventory <lab>/inventory.yaml --host h4
[--test 'suites/atomic/test_upgrade_rollback.py::test_upgrade_reboot_and_rollback']
[--repeat 3]``. Also a pytest plugin (``-p cycle_cost``, internal): it samples the cgroups
at the start and the end of the check's protocol.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CPUACCT = Path("/sys/fs/cgroup/cpuacct")
ENV = "STACKCHECK_CYCLE_COST"  # "<pytest cgroup>:<host cgroup>:<out file>"
REPO = Path(__file__).resolve().parent.parent


def usage(group: Path) -> tuple[float, float]:
    """(user, system) CPU seconds of a cpuacct cgroup."""
    return (int((group / "cpuacct.usage_user").read_text()) / 1e9,
            int((group / "cpuacct.usage_sys").read_text()) / 1e9)


# --- the pytest plugin ---------------------------------------------------------------------

_outcomes: dict[str, list[str]] = {}


def pytest_runtest_logreport(report):  # type: ignore[no-untyped-def]
    if report.when == "call" or report.outcome != "passed":
        _outcomes.setdefault(report.nodeid, []).append(report.outcome)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):  # type: ignore[no-untyped-def]
    spec = os.environ.get(ENV)
    if not spec:
        return (yield)
    mine, host, out = spec.split(":")
    before = {"pytest": usage(Path(mine)), "host": usage(Path(host)), "t": time.time()}
    try:
        return (yield)
    finally:
        after = {"pytest": usage(Path(mine)), "host": usage(Path(host)), "t": time.time()}
        outcome = "/".join(_outcomes.get(item.nodeid, ["?"]))
        with open(out, "a") as f:
            f.write(json.dumps({"test": item.nodeid, "before": before, "after": after,
                                "outcome": outcome}) + "\n")


# --- the driver ------------------------------------------------------------------------------

def host_pids(state_dir: Path, lab: str, host: str) -> set[int]:
    """Every process of ``host`` (its pids-cgroup subtree, plus its recorded daemons)."""
    pids: set[int] = set()
    root = Path("/sys/fs/cgroup/pids") / f"stackcheck-{lab}" / host
    for procs in root.rglob("cgroup.procs"):
        pids |= {int(p) for p in procs.read_text().split()}
    data = json.loads((state_dir / "state.json").read_text())
    pids |= {rec["pid"] for key, rec in data.get("processes", {}).items()
             if key.startswith(f"{host}/")}
    return pids


@contextlib.contextmanager
def cgroups(tag: str, state_dir: Path, lab: str, host: str) -> Iterator[tuple[Path, Path]]:
    """Two cpuacct cgroups: one for pytest, one holding the host's processes; undone after."""
    base = CPUACCT / f"stackcheck-cost-{tag}"
    mine, theirs = base / "pytest", base / "host"
    for g in (base, mine, theirs):
        g.mkdir(exist_ok=True)
    for pid in host_pids(state_dir, lab, host):
        with contextlib.suppress(OSError):
            (theirs / "cgroup.procs").write_text(str(pid))
    try:
        yield mine, theirs
    finally:
        for g in (mine, theirs):
            for pid in (g / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    (CPUACCT / "cgroup.procs").write_text(pid)
        for g in (mine, theirs, base):
            for _ in range(50):
                try:
                    g.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def ssh_counts(trace: Path, test: str) -> dict[str, int]:
    counts = {"exec": 0, "internal": 0, "connect": 0}
    for f in trace.glob("*.jsonl"):
        for line in f.read_text().splitlines():
            e = json.loads(line)
            if e.get("test") != test:
                continue
            if e["k"] == "ssh":
                counts["exec"] += 1
                counts["internal"] += bool(e.get("internal"))
            elif e["k"] == "connect":
                counts["connect"] += 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", type=Path, required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--test", default="suites/atomic/test_upgrade_rollback.py::"
                                          "test_upgrade_reboot_and_rollback")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep the traces in this folder")
    args = parser.parse_args()
    from stackcheck.lab import load_inventory

    lab = load_inventory(args.inventory)
    state_dir = Path(lab.state_dir or args.inventory.parent)
    nodeid = f"{args.test}[{args.host}]"
    rows = []
    with tempfile.TemporaryDirectory(prefix="stackcheck-cost-") as tmp:
        work = Path(tmp)
        for i in range(args.repeat):
            out, trace = work / f"cost-{i}.jsonl", (args.keep or work) / f"trace-{i}"
            with cgroups(f"{os.getpid()}-{i}", state_dir, lab.name, args.host) as (mine, host):
                env = {**os.environ, ENV: f"{mine}:{host}:{out}", "STACKCHECK_TRACE": str(trace),
                       "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "benchmarks")])}
                argv = [sys.executable, "-m", "pytest", "-n", "0", "-p", "cycle_cost",
                        "-p", "benchmarks.trace", f"--inventory={args.inventory}", "-q",
                        "-p", "no:cacheprovider", "-o", "addopts=", nodeid]
                done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True,
                                      preexec_fn=lambda m=mine: (m / "cgroup.procs").write_text(
                                          str(os.getpid())))
            if not out.exists():
                print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
                return 1
            rec = json.loads(out.read_text().splitlines()[-1])
            py = [a - b for a, b in zip(rec["after"]["pytest"], rec["before"]["pytest"],
                                        strict=True)]
            hs = [a - b for a, b in zip(rec["after"]["host"], rec["before"]["host"],
                                        strict=True)]
            row = {"outcome": rec["outcome"], "wall": rec["after"]["t"] - rec["before"]["t"],
                   "pytest_cpu": sum(py), "host_cpu": sum(hs), "pytest_user_sys": py,
                   "host_user_sys": hs, **ssh_counts(trace, nodeid)}
            rows.append(row)
            print(f"run {i + 1}: {row['outcome']}, {row['wall']:.1f} s wall; CPU pytest "
                  f"{row['pytest_cpu']:.2f} s (user {py[0]:.2f}, sys {py[1]:.2f}), host side "
                  f"{row['host_cpu']:.2f} s (user {hs[0]:.2f}, sys {hs[1]:.2f}); SSH "
                  f"{row['exec']} exec ({row['internal']} testinfra's own), "
                  f"{row['connect']} connections", flush=True)
    med = {k: statistics.median(r[k] for r in rows)
           for k in ("wall", "pytest_cpu", "host_cpu", "exec", "connect")}
    print(f"median of {len(rows)}: {med['wall']:.1f} s wall, CPU {med['pytest_cpu']:.2f} s "
          f"pytest + {med['host_cpu']:.2f} s host side = "
          f"{med['pytest_cpu'] + med['host_cpu']:.2f} s; {med['exec']:.0f} SSH exec, "
          f"{med['connect']:.0f} connections")
    return 0


if __name__ == "__main__":
    sys.exit(main())
