"""The etcd suite catches real faults, and a run killed mid-fault is healed by the next run.

Each lab test builds its own local lab (name ``etf``, 10.213.40.0/24, no docker; ~1-2 s)
and tears it down afterwards: every fault here leaves a broken cluster behind. The suites
run against the lab's inventory in separate pytest processes, as an operator would run them.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from xml.etree import ElementTree as ET

import pytest
from labs import inventory, local_lab, run_pytest

from stackcheck.etcd import timeline, trim
from stackcheck.etcd.cluster import Member, health, healthy, leader, members, wait_healthy
from stackcheck.etcd.linearizability import History, Op
from stackcheck.etcd.traffic_checks import member_of, unavailability, validate
from stackcheck.etcd.workload import Record, Window
from stackcheck.faults import FaultJournal, Faults, journal_path
from stackcheck.lab import Host, Lab
from stackcheck_provisioners import get_provisioner
from stackcheck_provisioners.hostlab import etcd as local_etcd
from stackcheck_provisioners.hostlab.layout import HostPlan
from stackcheck_provisioners.local import control
from stackcheck_suites.etcd.scenario import (
    UNAVAILABLE_BOUND,
    Scenario,
    read_logs,
    require_healthy,
    traffic,
)

REPO = Path(__file__).resolve().parent.parent
HEALTH = "suites/etcd/test_health.py"
READ_BACK = ("suites/etcd/test_consistency.py::"
             "test_write_through_one_member_reads_linearizably_everywhere")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="a local lab needs root")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A fresh 3-host local lab for one test (faults here are not worth repairing)."""
    with local_lab(tmp_path / "lab", "etcdfaults", name="etf", subnet="10.213.40.0/24",
                   docker="false", kubernetes="false") as built:
        yield built


def run_suites(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """Run suites against the lab's inventory in a fresh pytest process."""
    return run_pytest(lab, "--no-must-gather", "-rfE", "--tb=line", *args)


def plan(lab: Lab, host: str) -> HostPlan:
    """The local lab's own plan of a host (where its etcd keeps its data)."""
    assert lab.state_dir is not None
    layout, _ = control.layout_of(Path(lab.state_dir))
    return layout.host(host)


def member(lab: Lab, host: str) -> Member:
    return next(m for m in members(lab, timeout=3) if m.host.name == host)


def etcd_active(lab: Lab, host: str) -> bool:
    return get_provisioner("local").service(lab, lab.host(host), "etcd", "is_active").ok


def restart_etcd(lab: Lab, host: str, *, wipe: bool, overrides: dict[str, str] | None = None):
    """Stop etcd on ``host``, optionally wipe its data dir and override flags, start it."""
    provisioner = get_provisioner("local")
    assert provisioner.service(lab, lab.host(host), "etcd", "stop").ok
    if wipe:
        shutil.rmtree(plan(lab, host).dir / "etcd")
    if overrides:
        local_etcd.overrides_path(plan(lab, host)).write_text(json.dumps(overrides))
    return provisioner.service(lab, lab.host(host), "etcd", "start", timeout=20)


def failures(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout[-6000:] + result.stderr[-2000:]


@pytest.mark.lab
@needs_root
def test_run_killed_mid_fault_is_reported_and_healed_by_the_next_run(lab: Lab) -> None:
    journal = FaultJournal(journal_path(lab, REPO))
    log = Path(lab.state_dir or ".") / "killed-run.log"
    with open(log, "w") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "pytest", f"--inventory={inventory(lab)}",
             "-p", "no:cacheprovider", "-q", "suites/etcd/test_quorum.py"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    stopped: tuple[str, str] | None = None
    try:
        deadline = time.monotonic() + 300
        while stopped is None:
            assert run.poll() is None, f"the run ended before stopping a member: {log.read_text()}"
            assert time.monotonic() < deadline, "no member was stopped by the run in 300 s"
            stopped = next(((h, s) for h, s in journal.pending()
                            if s == "etcd" and not etcd_active(lab, h)), None)
            time.sleep(0.02)
        os.killpg(run.pid, signal.SIGKILL)  # the run, and whatever it started, in one go
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    assert run.returncode == -signal.SIGKILL
    host, _ = stopped

    # the member is really down, and the journal still says so
    assert not etcd_active(lab, host), f"{host}: etcd runs again after the kill"
    with pytest.raises(Exception):  # noqa: B017 - any error: nothing answers there
        member(lab, host).client.status()
    assert (host, "etcd") in journal.pending()

    # lab status reports it and fails
    status = subprocess.run(
        [sys.executable, "-m", "stackcheck_cli.main", "lab", "status", "--lab-dir",
         str(lab.state_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert status.returncode == 1, status.stdout + status.stderr
    assert "pending faults (left stopped by an interrupted run" in status.stdout
    assert f"{host}/etcd" in status.stdout.splitlines()[-1]

    # the next run's preflight restores it, and its checks pass
    result = run_suites(lab, "suites/etcd/test_health.py")
    assert result.returncode == 0, failures(result)
    assert f"stackcheck preflight: restarted what an earlier run left stopped: {host}/etcd" in (
        result.stdout)
    assert etcd_active(lab, host)
    assert journal.pending() == []
    assert healthy(members(lab)), "the cluster is not healthy after the preflight"


@pytest.mark.lab
@needs_root
def test_member_with_wiped_data_is_caught(lab: Lab) -> None:
    endpoint = member(lab, "h2").endpoint
    restarted = restart_etcd(lab, "h2", wipe=True)
    # etcd 3.4 asks its peers first and refuses to bootstrap a member they already know
    assert not restarted.ok, "expected etcd to refuse to start on an empty data dir"
    assert "has already been bootstrapped" in restarted.stderr
    result = run_suites(lab, f"{HEALTH}::test_every_endpoint_is_healthy", READ_BACK)
    assert result.returncode == 1, failures(result)
    assert "1 failed, 1 error" in result.stdout, failures(result)
    assert (f"expected every endpoint healthy with a leader (waited 10s); saw "
            f"{{'h2 ({endpoint})': 'does not answer (ConnectionFailedError: Connection refused)'}}"
            ) in result.stdout
    # the read-back compares every member: the preflight saw h2 down and blocks it
    assert "blocked: needs every etcd member: quorum kept (2/3); h2: " in result.stdout, (
        failures(result))
    assert "does not answer (connection refused)" in result.stdout, failures(result)


@pytest.mark.lab
@needs_root
def test_member_bootstrapped_with_wrong_initial_cluster_is_caught(lab: Lab) -> None:
    """h2 rebuilt with ``--initial-cluster`` naming only itself: a one-member cluster of its own.

    etcd reads ``--initial-cluster`` only when it bootstraps, so the member's data is wiped
    first (as when an operator rebuilds a member with the wrong configuration).
    """
    h2 = member(lab, "h2")
    wrong = f"h2=https://{h2.host.address}:2380"
    restarted = restart_etcd(lab, "h2", wipe=True, overrides={"--initial-cluster": wrong})
    assert restarted.ok, f"h2 did not come up on its own: {restarted.stderr}"
    result = run_suites(lab, HEALTH, READ_BACK)
    assert result.returncode == 1, failures(result)
    out = result.stdout
    # h2 answers and has a leader (itself): only the checks across members see the split
    assert "test_every_endpoint_is_healthy" not in out.split("short test summary")[-1]
    assert "expected every member in one cluster; the members report 2 cluster ids" in out
    assert f"'{h2.label}']" in out, failures(result)
    assert "expected one leader agreed by all" in out
    h1 = member(lab, "h1")
    assert f"h1 ({h1.host.address}) is not a member (in the list of h2)" in out, failures(result)
    # the preflight sees the two cluster ids first, and the read-back is blocked by it
    assert "split brain" in out, failures(result)


# --- a scenario's traffic is validated at its end: tampered histories fail it ---


def leader_loss(lab: Lab, tmp_path: Path) -> Scenario:
    """The leader-loss scenario with traffic (as in test_quorum), driven from here."""
    cluster = members(lab)
    faults = Faults(get_provisioner("local"), lab, FaultJournal(tmp_path / "faults.json"))
    require_healthy(cluster)
    with traffic(lab, cluster, "etcdfaults", "leader loss") as scenario:
        scenario.wait_ops("writes through every member", 30, lambda ops: {
            member_of(op.client) for op in ops if op.outcome == "ok" and op.kind == "write"
        } == {"h1", "h2", "h3"})
        old, _ = leader(cluster)
        window = scenario.traffic.fault(f"etcd stopped on {old.host.name}", [old.host.name])
        faults.stop(old.host, "etcd")
        time.sleep(2)
        faults.heal()
        scenario.traffic.healed(window)
        wait_healthy(cluster, 60, "a healthy cluster after the restart")
        time.sleep(1)
    return scenario


def observed_write(record: Record) -> Op:
    """An acknowledged write whose value another operation observed later."""
    ops = record.history.ops
    seen = {o.value if o.kind == "read" else (o.expect if o.swapped else o.seen)
            for o in ops if o.outcome == "ok" and o.kind in ("read", "cas")}
    return next(o for o in ops if o.kind == "write" and o.outcome == "ok" and o.value in seen)


@pytest.mark.lab
@needs_root
def test_scenario_history_validates_and_tampering_is_caught(lab: Lab, tmp_path: Path) -> None:
    scenario = leader_loss(lab, tmp_path)
    record = scenario.record
    assert scenario.findings is not None and not scenario.findings.problems, (
        scenario.findings and scenario.findings.problems)
    clients = {member_of(op.client) for op in record.history.ops}
    assert clients == {"h1", "h2", "h3"} and len(record.clients) == 6
    assert {op.kind for op in record.history.ops} == {"write", "read", "cas"}
    assert record.windows[0].end is not None and record.leaders

    # one acknowledged write removed from the history: its value was read, so the read
    # fits no order
    removed = observed_write(record)
    record.history.ops.remove(removed)
    logs = read_logs(members(lab), record)
    findings = validate(record, logs, UNAVAILABLE_BOUND)
    assert findings.verdict.ok is False
    culprit = findings.verdict.culprit
    assert culprit is not None and removed.value in (culprit.value, culprit.expect, culprit.seen)
    assert findings.problems[0].startswith(f"the history is not linearizable: {culprit.client} ")
    assert "fits no order" in findings.problems[0]
    assert culprit.client in findings.problems[0].split("clients involved: ")[1]
    with pytest.raises(AssertionError, match=r"leader loss: the traffic .* shows: the history "
                                             r"is not linearizable"):
        scenario.findings = findings
        scenario.assert_valid()
    record.history.ops.append(removed)

    # an acknowledged write lost from etcd: its log entry deleted behind the checker's back
    lost = observed_write(record)
    members(lab)[0].client.delete(f"{lost.key}/log/{lost.value}")
    findings = validate(record, read_logs(members(lab), record), UNAVAILABLE_BOUND)
    acked = len(record.history.acknowledged_writes())
    for host in ("h1", "h2", "h3"):
        assert (f"1 of {acked} acknowledged writes are missing when read through {host} after "
                f"recovery: {lost.value}") in findings.problems, findings.problems


@pytest.mark.lab
@needs_root
def test_disruptive_check_on_an_unhealthy_cluster_fails_fast_with_health(lab: Lab) -> None:
    """One member stopped: quorum is kept, so the preflight blocks nothing, but a scenario
    must not start on a cluster that is already missing a member."""
    assert get_provisioner("local").service(lab, lab.host("h1"), "etcd", "stop").ok
    started = time.monotonic()
    result = run_suites(lab, "suites/etcd/test_quorum.py::test_leader_loss_elects_new_leader",
                        "suites/etcd/test_quorum.py::test_minority_loss_keeps_writes_and_reads")
    took = time.monotonic() - started
    assert result.returncode == 1, failures(result)
    assert "2 errors" in result.stdout, failures(result)
    out = result.stdout
    assert ("etcd is not healthy before the scenario (waited 8s), so the fault was not "
            "injected: h1: does not answer (ConnectionFailedError: Connection refused); "
            "h2: ok (leader h") in out, failures(result)
    assert ("etcd is not healthy before the scenario (still, as before an earlier scenario), "
            "so the fault was not injected: h1: does not answer") in out, failures(result)
    # what the scenario would have done, counted on the member list
    assert "; stopping the leader (1) would leave 2 of 3 members down, quorum (2) lost" in out
    assert "; stopping a minority (1) would leave 2 of 3 members down, quorum (2) lost" in out
    assert "not yet" not in out and "Traceback" not in out
    assert took < 40, f"the checks took {took:.0f}s"


def test_trim_keeps_whole_lines_and_words() -> None:
    text = "\n".join(f'{{"level":"warn","msg":"retrying of unary invoker failed {i}"}}'
                     for i in range(20)) + "\nError: context deadline exceeded"
    trimmed = trim(text, 200)
    assert trimmed.endswith("\nError: context deadline exceeded")
    assert trimmed.startswith("[…") and "earlier line(s) trimmed]" in trimmed
    assert all(line in text for line in trimmed.splitlines()[1:])
    one = trim("Error: " + "word " * 100 + "context deadline exceeded", 60)
    assert one.endswith("context deadline exceeded") and "words trimmed]" in one
    assert all(w in {"word", "context", "deadline", "exceeded"} for w in one.split("] ")[1].split())


def test_unavailability_excuses_the_fault_window_only() -> None:
    h = History()
    record = Record(h, ["c1@h1", "c2@h2"], ["k"], started=0.0, stopped=30.0)
    for client, times in {"c1@h1": [1, 2, 20, 29], "c2@h2": [1, 2, 3, 4, 26]}.items():
        for t in times:
            h.ops.append(Op("write", f"{client}-{t}", t - 0.1, float(t), "ok", client, "k"))
    record.windows.append(Window("h1 stopped", 5.0, 15.0, down=["h1"]))
    assert unavailability(record, "h1") == pytest.approx(9.0)  # 2->5 is 3 s, 15->20 is 5 s
    assert unavailability(record, "h2") == pytest.approx(22.0)  # 4->26
    findings = validate(record, {"h1": {o.value for o in h.ops}, "h2": "timed out"}, 15.0)
    assert findings.problems == [
        "could not read the write log through h2 after recovery: timed out",
        "expected every member to accept a write within 15s outside its fault window; "
        "longest time without one (s): {'h2': 22.0}",
    ]


def test_timeline_draws_lanes_leader_and_fault() -> None:
    h = History()
    record = Record(h, ["c1@h1", "c2@h2"], ["k"], started=100.0, stopped=110.0)
    h.ops += [Op("write", "a", 101, 101.2, "ok", "c1@h1", "k"),
              Op("write", "b", 102, math.inf, "unknown", "c2@h2", "k", ended=107)]
    record.windows.append(Window("etcd stopped on h1", 103, 106, down=["h1"]))
    record.leaders += [(100.5, {"h1": "h1", "h2": "h1"}), (104, {"h1": None, "h2": "none"}),
                       (105, {"h1": None, "h2": "h2"})]
    picture = timeline.svg(record, "etcd: <leader loss>")
    ET.fromstring(picture)  # well-formed
    assert "etcd: &lt;leader loss&gt;" in picture
    assert picture.count('fill="#2e7d32"') == 1 and picture.count('fill="#ef6c00"') == 1
    assert "leader h1" in picture and "no leader" in picture and "leader h2" in picture
    assert "etcd stopped on h1" in picture


class Status:
    """A client that answers ``status`` and ``members`` as a member of a fixed cluster."""

    IDS: ClassVar[dict[str, str]] = {"h1": str(0x5455D690396CB74D),
                                     "h2": str(0xA3D2C89D5A99713D), "h3": str(0x12345678)}

    def __init__(self, me: str, leader: str | None) -> None:
        self.me, self.leader = me, leader

    def status(self) -> dict:
        if self.leader is None:
            raise ConnectionError("stopped")
        return {"header": {"member_id": self.IDS[self.me], "revision": "1"},
                "leader": self.IDS.get(self.leader, "0"), "raftTerm": "3"}

    def members(self) -> list[dict]:
        return [{"ID": i, "name": n} for n, i in self.IDS.items()]


def fake_cluster(views: dict[str, str | None]) -> list[Member]:
    out = []
    for name, named in views.items():
        host = Host(name=name, address=f"10.0.0.{name[1:]}", roles=["etcd"])
        client = Status(name, named)
        out.append(Member(host, f"https://{host.address}:2379", client))  # type: ignore[arg-type]
    return out


def test_leader_disagreement_names_members_with_hex_ids() -> None:
    cluster = fake_cluster({"h1": "h1", "h2": "h2", "h3": None})
    with pytest.raises(AssertionError) as caught:
        leader(cluster)
    assert str(caught.value) == (
        "members disagree on the leader or have none: {'h1': 'h1 (5455d690396cb74d)', "
        "'h2': 'h2 (a3d2c89d5a99713d)'}")
    summary = health(cluster)
    assert summary == {"h1": "names leader h1 (5455d690396cb74d), others differ",
                       "h2": "names leader h2 (a3d2c89d5a99713d), others differ",
                       "h3": "does not answer: ConnectionError: stopped"}
