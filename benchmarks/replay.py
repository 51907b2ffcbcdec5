"""Replay a run's trace (``benchmarks/trace.py``) without pytest: the floor of that run.

Method: the traced run's SSH commands, etcd HTTP calls and local commands are replayed
* over one SSH connection per host and one HTTP session per etcd endpoint (opened up front,
  their cost counted), shared by every lane;
* with the run's own concurrency and no more: one lane per xdist worker, each replaying the
  checks its worker ran, in the same order; a check marked ``disruptive`` runs alone (a
  writer-preferring lock: it waits for running checks, then the others wait for it); inside a
  check, operations that overlapped in time on different threads overlap again (e.g. the ping
  matrix), everything else runs back to back;
* without pytest, fixtures, reporting, testinfra's OS detection (``internal`` commands) or
  polling sleeps: a ``wait_for`` is replayed as its final, successful poll, repeated every
  50 ms until every call answers as it did in the run or the wait's timeout passes. "As it
  did" = the same exit status (SSH, local) or HTTP status class; and for an SSH command that
  the check had run before, output changed (or not) like in the run -- e.g. a new boot id after
  a reboot. Earlier, unsuccessful polls are not replayed;
* reconnecting only when a connection broke (a reboot), retried every 0.1 s;
* with one rewrite of state-dependent names: an ostree deployment's serial in
  ``--origin-file=.../<checksum>.<serial>.origin`` changes with every deploy, so it is looked
  up at replay time (one ``ls`` over the same connection, counted in the floor).

The floor is therefore a little optimistic (e.g. a poll that saw "no leader yet" with HTTP 200
counts as done at once), which makes the run-to-floor ratio conservative.

Usage: ``.venv/bin/python benchmarks/replay.py --inventory lab.yaml TRACE_DIR [--json OUT]``;
prints JSON (wall time, per-lane busy time, what answered differently from the run).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paramiko
import requests

from stackcheck.lab import Lab, load_inventory

OPS = ("ssh", "http", "local")
POLL = 0.05  # s between replayed polls of a wait
RECONNECT_TIMEOUT = 120.0  # s to get a broken SSH connection back (a host rebooting)
ORIGIN = re.compile(r"--origin-file=(\S*/deploy/)([0-9a-f]{64})\.(\d+)\.origin")


@dataclass
class Wait:
    """A ``wait_for``: its final poll's operations, replayed until they answer as recorded."""

    what: str
    timeout: float
    t0: float
    ops: list[dict[str, Any]]


@dataclass
class Check:
    nodeid: str
    worker: str
    disruptive: bool
    t0: float
    steps: list[list[dict[str, Any]] | Wait] = field(default_factory=list)


def load(trace_dir: Path) -> list[Check]:
    """The traced checks, each with its replay steps (phases of overlapping ops, and waits)."""
    events = [json.loads(line) for path in sorted(Path(trace_dir).glob("trace-*.jsonl"))
              for line in path.read_text().splitlines() if line.strip()]
    ops: dict[str, list[dict]] = defaultdict(list)
    waits: dict[str, list[dict]] = defaultdict(list)
    checks = []
    for event in events:
        if event["k"] in OPS and not event.get("internal"):
            ops[event["test"]].append(event)
        elif event["k"] == "wait":
            waits[event["test"]].append(event)
        elif event["k"] == "test":
            checks.append(Check(event["test"], event["worker"], event["disruptive"], event["t0"]))
    for check in checks:
        mine = sorted(ops.get(check.nodeid, []), key=lambda o: o["t0"])
        _mark_changes(mine)
        check.steps = _steps(mine, waits.get(check.nodeid, []))
    return sorted(checks, key=lambda c: c.t0)


def _mark_changes(ops: list[dict]) -> None:
    """``changed``: did an SSH command's output differ from its previous run in the check?"""
    last: dict[tuple[str, str], str] = {}
    for op in ops:
        if op["k"] != "ssh" or "out" not in op:
            continue
        key = (op["host"], op["cmd"])
        if key in last:
            op["changed"] = op["out"] != last[key]
        last[key] = op["out"]


def _steps(ops: list[dict], waits: list[dict]) -> list[list[dict] | Wait]:
    outer = [w for w in waits
             if not any(o is not w and o["t0"] <= w["t0"] and w["t1"] <= o["t1"] for o in waits)]
    timed: list[tuple[float, list[dict] | Wait]] = []
    rest = list(ops)
    for w in sorted(outer, key=lambda w: w["t0"]):
        inside = [o for o in rest if o["thread"] == w["thread"]
                  and w["t0"] <= o["t0"] and o["t1"] <= w["t1"] + 1e-3]
        rest = [o for o in rest if o not in inside]
        final = [o for o in inside if o["t0"] >= w["last_poll"]]
        timed.append((w["t0"], Wait(w["what"], w["timeout"], w["t0"], final)))
    phase: list[dict] = []
    end = 0.0
    for op in sorted(rest, key=lambda o: o["t0"]):
        if phase and op["t0"] >= end:
            timed.append((phase[0]["t0"], phase))
            phase = []
        phase.append(op)
        end = max(end, op["t1"]) if len(phase) > 1 else op["t1"]
    if phase:
        timed.append((phase[0]["t0"], phase))
    return [step for _, step in sorted(timed, key=lambda item: item[0])]


class LabLock:
    """Readers (ordinary checks) share; a writer (disruptive check) waits, then runs alone."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    def acquire(self, exclusive: bool) -> None:
        with self._cond:
            if exclusive:
                self._waiting_writers += 1
                self._cond.wait_for(lambda: not self._writer and self._readers == 0)
                self._waiting_writers -= 1
                self._writer = True
            else:
                self._cond.wait_for(lambda: not self._writer and not self._waiting_writers)
                self._readers += 1

    def release(self, exclusive: bool) -> None:
        with self._cond:
            if exclusive:
                self._writer = False
            else:
                self._readers -= 1
            self._cond.notify_all()


class Replayer:
    """Runs operations against the lab over shared connections."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.by_address = {h.address: h for h in lab.hosts}
        self.ssh: dict[str, paramiko.SSHClient] = {}
        self.http: dict[str, requests.Session] = {}
        self.mismatches: list[str] = []
        self._lock = threading.Lock()

    def connect(self) -> None:
        """One SSH connection per host and one HTTP session per etcd endpoint."""
        with ThreadPoolExecutor(max_workers=max(1, len(self.lab.hosts))) as pool:
            clients = list(pool.map(self._ssh_connect, self.lab.hosts))
        self.ssh = {h.address: c for h, c in zip(self.lab.hosts, clients, strict=True)}
        if self.lab.etcd is not None:
            for endpoint in self.lab.etcd.endpoints:
                session = requests.Session()
                session.trust_env = False
                etcd = self.lab.etcd
                session.verify = str(etcd.ca_file) if etcd.ca_file else True
                if etcd.cert_file and etcd.key_file:
                    session.cert = (str(etcd.cert_file), str(etcd.key_file))
                self.http[_base(endpoint)] = session

    def _ssh_connect(self, host) -> paramiko.SSHClient:
        access = self.lab.ssh_for(host)
        client = paramiko.SSHClient()
        client.load_host_keys(str(access.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(host.address, port=access.port, username=access.user,
                       key_filename=str(access.identity_file) if access.identity_file else None,
                       timeout=access.connect_timeout, allow_agent=False,
                       look_for_keys=access.identity_file is None)
        return client

    def close(self) -> None:
        for client in self.ssh.values():
            client.close()
        for session in self.http.values():
            session.close()

    def run(self, op: dict[str, Any], outputs: dict | None = None) -> object:
        """Replay one operation; returns its outcome (exit status, HTTP status class, error).

        ``outputs`` (per check) keeps the last output hash of each SSH command.
        """
        if op["k"] == "ssh":
            rc, out = self._ssh(op)
            if outputs is not None:
                outputs[(op["host"], op["cmd"])] = out
            return rc
        if op["k"] == "http":
            return self._http(op)
        return self._local(op)

    def _ssh(self, op: dict[str, Any]) -> tuple[object, str]:
        host = self.by_address.get(op["host"])
        if host is None:
            return "error:unknown-host", ""
        command = self._resolve(op)
        deadline = time.monotonic() + RECONNECT_TIMEOUT
        while True:
            client = self.ssh[op["host"]]
            try:
                chan = client.get_transport().open_session()  # type: ignore[union-attr]
                chan.exec_command(command)
                out = b"".join(chan.makefile("rb"))
                b"".join(chan.makefile_stderr("rb"))
                return chan.recv_exit_status(), hashlib.sha1(out).hexdigest()[:12]
            except (paramiko.SSHException, OSError, AttributeError, EOFError):
                if time.monotonic() > deadline:
                    return "error:connection", ""
                self._reconnect(host, deadline)

    def _resolve(self, op: dict[str, Any]) -> str:
        """The command with today's ostree deployment serial in an ``--origin-file`` path."""
        command = op["cmd"]
        found = ORIGIN.search(command)
        if not found:
            return command
        folder, checksum, _ = found.groups()
        prefix = command[:command.find(" ostree ")] if " ostree " in command else ""
        listing = f"{prefix} sh -c {shlex.quote(f'ls -d {folder}{checksum}.*.origin')}"
        chan = self.ssh[op["host"]].get_transport().open_session()  # type: ignore[union-attr]
        chan.exec_command(listing.strip())
        names = b"".join(chan.makefile("rb")).decode().split()
        chan.recv_exit_status()
        serials = sorted(int(n.rsplit(".", 2)[-2]) for n in names if n.endswith(".origin"))
        if not serials:
            return command
        new = f"--origin-file={folder}{checksum}.{serials[-1]}.origin"
        return command[:found.start()] + new + command[found.end():]

    def _reconnect(self, host, deadline: float) -> None:
        with self._lock:
            old = self.ssh[host.address]
            transport = old.get_transport()
            if transport is not None and transport.is_active():
                return  # another thread reconnected already
            old.close()
            while True:
                try:
                    self.ssh[host.address] = self._ssh_connect(host)
                    return
                except (paramiko.SSHException, OSError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)

    def _http(self, op: dict[str, Any]) -> object:
        session = self.http.get(_base(op["url"]))
        if session is None:
            session = self.http.setdefault(_base(op["url"]), requests.Session())
        headers = {"Content-Type": op["content_type"]} if op.get("content_type") else {}
        body = base64.b64decode(op["body"]) if op.get("body") else None
        try:
            response = session.request(op["method"], op["url"], data=body, headers=headers,
                                       timeout=op.get("timeout"))
        except Exception as exc:  # noqa: BLE001 - an error is an outcome here
            return f"error:{type(exc).__name__}"
        return _http_class(response.status_code)

    def _local(self, op: dict[str, Any]) -> object:
        env = {**os.environ, "ETCDCTL_API": "3"}
        try:
            done = subprocess.run(op["argv"], capture_output=True, timeout=op.get("timeout"),
                                  env=env, check=False, shell=isinstance(op["argv"], str))
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"error:{type(exc).__name__}"
        return done.returncode

    def expect(self, op: dict[str, Any], got: object) -> bool:
        want = _wanted(op)
        if got == want:
            return True
        with self._lock:
            what = op.get("cmd") or op.get("url") or op.get("argv")
            self.mismatches.append(f"{op['test']}: {op['k']} {str(what)[:80]!r}: "
                                   f"run {want}, replay {got}")
        return False

    def phase(self, ops: list[dict[str, Any]], outputs: dict) -> None:
        by_thread: dict[int, list[dict]] = defaultdict(list)
        for op in ops:
            by_thread[op["thread"]].append(op)
        if len(by_thread) == 1:
            for op in ops:
                self.expect(op, self.run(op, outputs))
            return
        with ThreadPoolExecutor(max_workers=len(by_thread)) as pool:
            list(pool.map(lambda seq: [self.expect(o, self.run(o, outputs)) for o in seq],
                          by_thread.values()))

    def wait(self, wait: Wait, outputs: dict) -> None:
        deadline = time.monotonic() + wait.timeout
        before = dict(outputs)
        while True:
            outcomes = [self.run(op, outputs) for op in wait.ops]
            done = outcomes == [_wanted(op) for op in wait.ops] and all(
                op.get("changed") is None or (op["host"], op["cmd"]) not in before
                or (outputs[(op["host"], op["cmd"])] != before[(op["host"], op["cmd"])])
                == op["changed"]
                for op in wait.ops if op["k"] == "ssh"
            )
            if done:
                return
            if time.monotonic() >= deadline:
                for op, got in zip(wait.ops, outcomes, strict=True):
                    self.expect(op, got)
                return
            time.sleep(POLL)

    def check(self, check: Check) -> None:
        outputs: dict = {}
        for step in check.steps:
            if isinstance(step, Wait):
                self.wait(step, outputs)
            else:
                self.phase(step, outputs)


def _http_class(status: int) -> str:
    return f"{status // 100}xx"


def _wanted(op: dict[str, Any]) -> object:
    if op["k"] == "http":
        status = op["status"]
        return _http_class(status) if isinstance(status, int) else status
    return op["rc"]


def _base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def replay(lab: Lab, checks: list[Check]) -> dict[str, Any]:
    """Replay ``checks`` lane by lane; returns timings and what answered differently."""
    start = time.monotonic()
    replayer = Replayer(lab)
    replayer.connect()
    connected = time.monotonic() - start
    lanes: dict[str, list[Check]] = defaultdict(list)
    for check in checks:
        lanes[check.worker].append(check)
    lock = LabLock()
    busy: dict[str, float] = {}

    def lane(name: str) -> None:
        spent = 0.0
        for check in lanes[name]:
            lock.acquire(check.disruptive)
            t0 = time.monotonic()
            try:
                replayer.check(check)
            finally:
                spent += time.monotonic() - t0
                lock.release(check.disruptive)
        busy[name] = spent

    try:
        with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
            list(pool.map(lane, sorted(lanes)))
    finally:
        replayer.close()
    return {
        "wall_s": round(time.monotonic() - start, 3),
        "connect_s": round(connected, 3),
        "lanes": {k: round(v, 3) for k, v in sorted(busy.items())},
        "checks": len(checks),
        "operations": sum(len(s.ops) if isinstance(s, Wait) else len(s)
                          for c in checks for s in c.steps),
        "mismatches": replayer.mismatches,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trace_dir", type=Path)
    parser.add_argument("--inventory", type=Path, required=True)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    checks = load(args.trace_dir)
    if not checks:
        print(f"no checks in the trace at {args.trace_dir}", file=sys.stderr)
        return 2
    result = json.dumps(replay(load_inventory(args.inventory), checks), indent=2)
    print(result)
    if args.json:
        args.json.write_text(result + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
