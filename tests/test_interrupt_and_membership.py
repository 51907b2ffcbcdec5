"""Ctrl-C mid-fault restores and ends the run; etcd's arithmetic comes from its member list.

The lab tests share one local lab (``pb2``, 10.222.2.0/24, etcd only; ~5 s to build), and
leave it as they found it: a member stopped by an interrupted scenario is restarted by the run
itself, an added fourth member is removed. The suites run against the lab's inventory in
separate pytest processes, as an operator runs them, and SIGINT goes to the pytest process
(the xdist controller under ``-n 2``) as ``kill -INT`` would send it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import redirect_stderr
from pathlib import Path

import pytest

from stackcheck.etcd import etcdctl_args
from stackcheck.etcd.cluster import (
    Listed,
    Membership,
    differences,
    healthy,
    members,
    membership,
)
from stackcheck.faults import FaultJournal, journal_path
from stackcheck.lab import Lab
from stackcheck.ssh import close_all
from stackcheck_fixtures import interrupt
from stackcheck_provisioners import ProvisionConfig, get_provisioner
from stackcheck_suites.etcd.scenario import Stops

REPO = Path(__file__).resolve().parent.parent
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="a local lab needs root")

#: etcd 3.4.23 (Debian etcd-server) after ``etcdctl member add h4 --peer-urls=…:2380``, the
#: v3 gateway's member list as etcd3gw 2.7 returns it (recorded on a local lab, 2026-12-03):
#: the unstarted member has no name and no client URLs
RECORDED_MEMBER_LIST = [
    {"ID": "2071319820648641472", "peerURLs": ["https://10.222.1.14:2380"]},
    {"ID": "5961183499611845104", "name": "h2", "peerURLs": ["https://10.222.1.12:2380"],
     "clientURLs": ["https://10.222.1.12:2379"]},
    {"ID": "6351202978754720821", "name": "h1", "peerURLs": ["https://10.222.1.11:2380"],
     "clientURLs": ["https://10.222.1.11:2379"]},
    {"ID": "9277160919145491537", "name": "h3", "peerURLs": ["https://10.222.1.13:2380"],
     "clientURLs": ["https://10.222.1.13:2379"]},
]


# --- unit tests: words and arithmetic ---------------------------------------------------


def test_the_member_list_decides_size_quorum_and_tolerance() -> None:
    listed = Membership(tuple(Listed.from_gateway(m) for m in RECORDED_MEMBER_LIST), "h1")
    assert (listed.size, listed.quorum, listed.tolerance) == (4, 3, 1)
    (extra,) = listed.unstarted
    assert extra.describe() == ("10.222.1.14 (id 1cbece670dfcf3c0, unstarted, "
                                "https://10.222.1.14:2380)")
    assert listed.after(2) == "2 of 4 members down, quorum (3) lost"
    assert listed.after(1) == "1 of 4 members down, quorum (3) kept"
    expected = {"10.222.1.11": "h1", "10.222.1.12": "h2", "10.222.1.13": "h3"}
    assert differences(list(listed.members), expected) == [
        "extra member 10.222.1.14 (id 1cbece670dfcf3c0, unstarted, https://10.222.1.14:2380)"]
    three = [Listed.from_gateway(m) for m in RECORDED_MEMBER_LIST[1:3]]
    assert differences(three, expected) == ["h3 (10.222.1.13) is not a member"]
    assert Stops("a minority", lambda m: m.tolerance).after(listed, 1) == (
        "stopping a minority (1) would leave 2 of 4 members down, quorum (3) lost")


def test_a_second_ctrl_c_while_restoring_says_how_to_finish(monkeypatch) -> None:
    monkeypatch.setattr(interrupt, "STATE", interrupt._Interrupt(
        presses=1, status_args=" --inventory=/labs/a.yaml", restoring="etcd on h2"))
    said = io.StringIO()
    with redirect_stderr(said):
        interrupt._on_sigint(signal.SIGINT, None)  # reported, the restore goes on
    assert said.getvalue().strip() == (
        "stackcheck: interrupted; restoring etcd on h2, please wait. Ctrl-C again leaves it "
        "to you: `stackcheck lab status --inventory=/labs/a.yaml` lists what is still stopped, "
        "and the next run's preflight restarts it.")
    interrupt.STATE.last_press -= 1  # a new press, not the same one seen twice
    with redirect_stderr(io.StringIO()), pytest.raises(KeyboardInterrupt):
        interrupt._on_sigint(signal.SIGINT, None)


# --- on a real lab ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    provisioner = get_provisioner("local")
    config = ProvisionConfig(
        run_id="interrupt", state_dir=tmp_path_factory.mktemp("pb2") / "lab", hosts=3,
        options={"name": "pb2", "subnet": "10.222.2.0/24", "docker": "false",
                 "kubernetes": "false"},
    )
    try:
        yield provisioner.create(config)
    finally:
        close_all()
        provisioner.abort(config)


def inventory(lab: Lab) -> Path:
    assert lab.state_dir is not None
    return Path(lab.state_dir) / "inventory.yaml"


def pytest_args(lab: Lab, *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", f"--inventory={inventory(lab)}",
            "-p", "no:cacheprovider", "--no-must-gather", "-q",
            "-rfE", *args]


def etcd_active(lab: Lab, host: str) -> bool:
    return get_provisioner("local").service(lab, lab.host(host), "etcd", "is_active").ok


@pytest.mark.lab
@needs_root
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_ctrl_c_mid_fault_restores_and_ends_the_run(lab: Lab, workers: list[str]) -> None:
    journal = FaultJournal(journal_path(lab, REPO))
    log = Path(lab.state_dir or ".") / f"interrupted-{len(workers)}.log"
    with open(log, "w") as out:
        run = subprocess.Popen(pytest_args(lab, *workers, "suites/etcd/test_quorum.py"),
                               cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        stopped = None
        while stopped is None:
            assert run.poll() is None, f"the run ended before stopping a member: {log.read_text()}"
            assert time.monotonic() < deadline, "no member was stopped by the run in 300 s"
            stopped = next((h for h, s in journal.pending()
                            if s == "etcd" and not etcd_active(lab, h)), None)
            time.sleep(0.05)
        os.kill(run.pid, signal.SIGINT)  # Ctrl-C (kill -INT of the controller)
        interrupted = time.monotonic()
        run.wait(timeout=120)
        took = time.monotonic() - interrupted
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=30)
    out = log.read_text()
    assert run.returncode == pytest.ExitCode.INTERRUPTED, out
    assert f"stackcheck: interrupted; restored etcd on {stopped} (stopped by the interrupted " \
           "check)" in out, out
    assert "KeyboardInterrupt" in out and " passed" not in out.splitlines()[-1], out
    assert etcd_active(lab, stopped), f"{stopped}: etcd was not restored"
    assert journal.pending() == []
    assert healthy(members(lab)), "the cluster is not healthy after the interrupted run"
    # (seen: 5-7 s in one process, 30-40 s under xdist on a loaded 2-core machine)
    assert took < 90, f"the run took {took:.0f}s to end after Ctrl-C"


def etcdctl(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    assert lab.etcd is not None
    return subprocess.run([*etcdctl_args(lab.etcd, lab.etcd.endpoints), *args],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "ETCDCTL_API": "3"})


@pytest.mark.lab
@needs_root
@pytest.mark.skipif(shutil.which("etcdctl") is None, reason="needs etcdctl (Debian etcd-client)")
def test_an_unstarted_fourth_member_is_named_and_scenarios_refuse(lab: Lab) -> None:
    # etcd refuses a member add until every member has been connected for a while (its
    # strict reconfiguration check): right after the Ctrl-C tests restarted one, retry
    deadline = time.monotonic() + 60
    while True:
        added = etcdctl(lab, "member", "add", "h4", "--peer-urls=https://10.222.2.14:2380",
                        "-w", "json")
        if added.returncode == 0 or "unhealthy cluster" not in added.stderr \
                or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert added.returncode == 0, added.stderr
    ident = f"{json.loads(added.stdout)['member']['ID']:x}"
    try:
        assert membership(members(lab)).size == 4
        started = time.monotonic()
        result = subprocess.run(
            pytest_args(lab, "--durations=0", "--durations-min=0", "suites/etcd/test_health.py",
                        "suites/etcd/test_quorum.py"),
            cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
        took = time.monotonic() - started
    finally:
        removed = etcdctl(lab, "member", "remove", ident)
    assert removed.returncode == 0, removed.stderr
    out = result.stdout
    assert result.returncode == 1, out
    extra = f"10.222.2.14 (id {ident}, unstarted, https://10.222.2.14:2380)"
    assert ("AssertionError: expected the member list to be the inventory's etcd hosts (h1, h2, "
            f"h3); it has 4 members: extra member {extra}") in out, out
    assert ("AssertionError: expected an odd number of members; the member list of h1 has 4 "
            f"(h1, h2, h3, {extra}): they tolerate 1 failure(s), the same as 3") in out, out
    refused = ("etcd is not ready for the scenario, so the fault was not injected: the member "
               f"list has 4 members and 1 of them is down: extra member {extra}; ")
    for what, after in (("the leader (1)", "2 of 4"), ("a minority (1)", "2 of 4"),
                        ("a majority (3)", "4 of 4")):
        assert (f"{refused}stopping {what} would leave {after} members down, quorum (3) lost"
                in out), out
    assert "3 errors" in out and "2 failed" in out, out
    for line in out.splitlines():  # every refusal within 10 s
        if line.split()[1:2] == ["setup"] and "test_quorum.py" in line:
            assert float(line.split("s", 1)[0]) < 10, line
    assert took < 90, f"the etcd suite took {took:.0f}s on a 4-member cluster"
    assert membership(members(lab)).size == 3
