"""The etcd suite catches real faults, and a run killed mid-fault is healed by the next run.

Each lab test builds its own local lab (name ``etf``, 10.213.40.0/24, no docker; ~1-2 s)
and tears it down afterwards: every fault here leaves a broken cluster behind. The suites
run against the lab's inventory in separate pytest processes, as an operator would run them.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from provisioners import ProvisionConfig, get_provisioner
from provisioners.local import control
from provisioners.local import etcd as local_etcd
from provisioners.local.layout import HostPlan
from stackcheck.faults import FaultJournal, journal_path
from stackcheck.lab import Host, Lab
from stackcheck.ssh import close_all
from suites.etcd.cluster import Member, Workload, healthy, members

REPO = Path(__file__).resolve().parent.parent
HEALTH = "suites/etcd/test_health.py"
READ_BACK = ("suites/etcd/test_consistency.py::"
             "test_write_through_one_member_reads_linearizably_everywhere")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="a local lab needs root")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A fresh 3-host local lab for one test (faults here are not worth repairing)."""
    provisioner = get_provisioner("local")
    config = ProvisionConfig(
        run_id="etcdfaults", state_dir=tmp_path / "lab", hosts=3,
        options={"name": "etf", "subnet": "10.213.40.0/24", "docker": "false",
                 "kubernetes": "false"},
    )
    try:
        yield provisioner.create(config)
    finally:
        close_all()
        provisioner.abort(config)


def run_pytest(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """Run suites against the lab's inventory in a fresh pytest process."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", f"--inventory={inventory(lab)}",
         "-p", "no:cacheprovider", "--no-must-gather", "-q", "-rfE", "--tb=line", *args],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )


def inventory(lab: Lab) -> Path:
    assert lab.state_dir is not None
    return Path(lab.state_dir) / "inventory.yaml"


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
        [sys.executable, "-m", "stackcheck.cli", "lab", "status", "--lab-dir", str(lab.state_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert status.returncode == 1, status.stdout + status.stderr
    assert "pending faults (left stopped by an interrupted run" in status.stdout
    assert f"{host}/etcd" in status.stdout.splitlines()[-1]

    # the next run's preflight restores it, and its checks pass
    result = run_pytest(lab, "suites/etcd/test_health.py")
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
    result = run_pytest(lab, f"{HEALTH}::test_every_endpoint_is_healthy", READ_BACK)
    assert result.returncode == 1, failures(result)
    assert "2 failed" in result.stdout, failures(result)
    assert (f"expected every endpoint healthy with a leader (waited 10s); saw "
            f"{{'h2 ({endpoint})': 'does not answer (ConnectionFailedError)'}}") in result.stdout
    assert "these read otherwise: {'h2': '<read failed: does not answer" in result.stdout


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
    result = run_pytest(lab, HEALTH, READ_BACK)
    assert result.returncode == 1, failures(result)
    out = result.stdout
    # h2 answers and has a leader (itself): only the checks across members see the split
    assert "test_every_endpoint_is_healthy" not in out.split("short test summary")[-1]
    assert "expected every member in one cluster; the members report 2 cluster ids" in out
    assert f"'{h2.label}']" in out, failures(result)
    assert "expected one leader agreed by all" in out
    assert "these members list other peer addresses: {'h2': ['" + h2.host.address in out
    assert "expected every member to read it linearizably; these read otherwise: {'h2': None}" \
        in out


# --- the linearizability check is wired: the suite's own check fails a stale history ---


class Register:
    """A client of one in-memory register that speaks etcd3gw's calls used by the workload.

    ``stale=True`` answers reads with the value before the last write, as a member that
    serves reads without confirming it is current would: not linearizable.
    """

    def __init__(self, stale: bool) -> None:
        self.stale = stale
        self.values: list[str] = []

    def transaction(self, txn: dict) -> dict:
        import base64

        put = txn["success"][0]["request_put"]
        self.values.append(base64.b64decode(put["value"]).decode())
        return {"succeeded": True}

    def get(self, key: str) -> list[bytes]:
        seen = self.values[:-1] if self.stale else self.values
        return [seen[-1].encode()] if seen else []


@pytest.fixture
def test_quorum(pytestconfig: pytest.Config) -> ModuleType:
    """``suites/etcd/test_quorum.py`` itself (its ``disruptive`` marker is the suites')."""
    pytestconfig.addinivalue_line("markers", "disruptive: registered by the suites' config")
    return importlib.import_module("suites.etcd.test_quorum")


def recorded(stale: bool) -> Workload:
    """Writes and reads recorded through the suite's Workload, as in test_quorum."""
    host = Host(name="h1", address="10.0.0.11", roles=["etcd"])
    member = Member(host, "https://10.0.0.11:2379", Register(stale))  # type: ignore[arg-type]
    workload = Workload("stackcheck/test/register")
    for _ in range(3):
        assert workload.write(member)
        assert workload.read(member)
    return workload


def test_suite_history_check_fails_a_stale_read_and_attaches_the_history(
    monkeypatch: pytest.MonkeyPatch, test_quorum: ModuleType
) -> None:
    attached: list[tuple[str, object]] = []
    monkeypatch.setattr("suites.etcd.cluster.evidence.attach_json",
                        lambda name, obj: attached.append((name, obj)))
    workload = recorded(stale=True)
    with pytest.raises(AssertionError, match="expected a linearizable history of the register; "
                                             "not linearizable"):
        test_quorum.test_history_is_linearizable(workload)
    assert [name for name, _ in attached] == ["history.json"]
    ops = attached[0][1]["ops"]  # type: ignore[index]
    assert len(ops) == 6 and {op["kind"] for op in ops} == {"write", "read"}


def test_suite_history_check_passes_a_current_register(
    monkeypatch: pytest.MonkeyPatch, test_quorum: ModuleType
) -> None:
    attached: list[str] = []
    monkeypatch.setattr("suites.etcd.cluster.evidence.attach_json",
                        lambda name, obj: attached.append(name))
    test_quorum.test_history_is_linearizable(recorded(stale=False))
    assert attached == []
