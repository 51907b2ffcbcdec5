"""Benchmark 4: what one trivial check costs through the harness vs the bare command.

Harness: ``pytest -n 0 benchmarks/checks/test_trivial.py`` (Allure results on): the check
``host.file("/etc/os-release").exists`` on every host, ``--checks`` times per host; timed from
the first check's start to the last check's end (pytest start-up and collection left out).
Direct: the same command (``test -e /etc/os-release``) the same number of times, one after the
other, over SSH connections opened beforehand (paramiko, as the harness uses).
Both sequential, interleaved, ``--repeat`` times. Overhead = harness / direct - 1 (goal <= 10%
at 12 hosts), in total and in the steady state: the mean check that is not the first on its
host (the first one also opens the host's SSH connection and runs testinfra's OS detection)
against the mean bare command. A traced harness run also counts SSH connections and commands
per check (one connection per host, no reconnects per check).

Usage: ``.venv/bin/python benchmarks/per_check.py [--hosts 12] [--checks 10] [--repeat 3]``.
Without ``--inventory`` it builds its own lab (``bench12`` on 10.213.62.0/24 for 12 hosts,
kubernetes=false) and removes it at the end, also when interrupted.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import paramiko
from common import (
    REPO,
    Timed,
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
from tracestats import events

from stackcheck.lab import Lab

GOAL = 0.10
CHECK = REPO / "benchmarks" / "checks" / "test_trivial.py"
COMMAND = "test -e /etc/os-release"


def connect_all(lab: Lab) -> dict[str, paramiko.SSHClient]:
    clients = {}
    for host in lab.hosts:
        access = lab.ssh_for(host)
        client = paramiko.SSHClient()
        client.load_host_keys(str(access.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(host.address, port=access.port, username=access.user,
                       key_filename=str(access.identity_file), allow_agent=False,
                       look_for_keys=False, timeout=access.connect_timeout)
        clients[host.name] = client
    return clients


def direct(clients: dict[str, paramiko.SSHClient], checks: int) -> Timed:
    """The bare commands over open connections, in the harness's order (host by host)."""
    start = time.monotonic()
    failed = 0
    for client in clients.values():
        for _ in range(checks):
            chan = client.get_transport().open_session()  # type: ignore[union-attr]
            chan.exec_command(COMMAND)
            b"".join(chan.makefile("rb"))
            b"".join(chan.makefile_stderr("rb"))
            failed += chan.recv_exit_status() != 0
    return Timed(time.monotonic() - start, 1 if failed else 0, f"{failed} commands failed")


def steady(checks: list[dict]) -> float:
    """Mean time of a check that is not the first on its host."""
    seen: set[str] = set()
    later = []
    for check in checks:
        if check["host"] in seen:
            later.append(check["end"] - check["start"])
        seen.add(check["host"])
    return statistics.mean(later) if later else float("nan")


def main() -> int:
    parser = lab_parser(__doc__, repeat=3, timeout=600, hosts=12, pytest_args=False)
    parser.add_argument("--checks", type=int, default=10, help="checks per host")
    args = parser.parse_args()
    facts = start()
    with tempfile.TemporaryDirectory(prefix="stackcheck-percheck-") as tmp:
        work = Path(tmp)
        with local_lab(args.hosts, work, inventory=args.inventory) as bench:
            hosts = len(bench.lab.hosts)
            env = {"BENCH_CHECK_REPEAT": str(args.checks)}
            trace = work / "trace"
            traced = run(pytest_argv(bench.inventory, work / "traced", workers="0",
                                     extra=["-p", "benchmarks.trace", str(CHECK)]),
                         timeout=args.timeout,
                         env={**env, "STACKCHECK_TRACE": str(trace), "PYTHONPATH": str(REPO)})
            evs = events(trace)
            connects = sum(e["k"] == "connect" for e in evs)
            commands = [e for e in evs if e["k"] == "ssh"]
            internal = sum(bool(e.get("internal")) for e in commands)
            clients = connect_all(bench.lab)
            spans: list[dict] = []

            def harness() -> Timed:
                span = work / f"span-{len(spans)}.json"
                timed = run(pytest_argv(bench.inventory, work / "harness", workers="0",
                                        extra=[str(CHECK)]),
                            timeout=args.timeout, env={**env, "BENCH_SPAN_FILE": str(span)})
                data = json.loads(span.read_text()) if span.exists() else {}
                spans.append({"seconds": data.get("seconds"), "process_s": timed.seconds,
                              "steady_s": steady(data.get("checks", []))})
                return Timed(data.get("seconds", float("nan")), timed.returncode, timed.tail)

            try:
                series = interleaved({"harness": harness,
                                      "direct": lambda: direct(clients, args.checks)},
                                     args.repeat)
            finally:
                for client in clients.values():
                    client.close()
        facts["load_end"] = machine()["load_start"]
    total = hosts * args.checks
    overhead = ratio(series["harness"].median, series["direct"].median) - 1
    print(f"\nmachine: {facts['cpus']} x {facts['cpu']}, {facts['memory_gib']} GiB; "
          f"load {facts['load_start']} -> {facts['load_end']}; {facts['date']}")
    print(f"{hosts} hosts x {args.checks} checks = {total} checks per run; traced run: "
          f"{connects} SSH connections, {len(commands) - internal} check commands + "
          f"{internal} testinfra OS-detection commands (exit {traced.returncode})")
    for s in series.values():
        fails = f"  FAILED {len(s.failures)}x: {s.failures[0][:200]}" if s.failures else ""
        print(f"{s.name:8} median {s.median:7.2f}s ({1000 * s.median / total:.1f} ms/check)  "
              f"spread {s.spread()}s  n={len(s.values)}{fails}")
    print(f"overhead per check = {100 * overhead:.1f}% (goal <= {100 * GOAL:.0f}%)")
    steady_check = statistics.median(s["steady_s"] for s in spans)
    bare = series["direct"].median / total
    print(f"steady state: a check that is not the first on its host {1000 * steady_check:.1f} ms, "
          f"the bare command {1000 * bare:.1f} ms: overhead "
          f"{100 * (steady_check / bare - 1):.1f}%")
    process = [s["process_s"] for s in spans]
    print(f"whole pytest process (start-up, collection, session end included): "
          f"{min(process):.1f}..{max(process):.1f}s")
    save(args.json, {"machine": facts, "hosts": hosts, "checks_per_host": args.checks,
                     "harness": vars(series["harness"]), "direct": vars(series["direct"]),
                     "overhead": overhead, "connections": connects,
                     "steady_overhead": steady_check / bare - 1,
                     "check_commands": len(commands) - internal, "internal_commands": internal,
                     "spans": spans})
    return 0


if __name__ == "__main__":
    sys.exit(main())
