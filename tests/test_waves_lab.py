"""Rolling waves on a real local lab: quorum kept throughout, claims never overlap, and an
interrupted wave still restores every host it started.

A 5-host lab (3 etcd members, tolerance 1): the atomic upgrade/reboot/rollback cycle runs in
waves of one etcd member plus others. While the suite runs in its own pytest process, this
test asks every etcd member for ``/health`` every 0.25 s; the healthy count never drops
below the quorum (2 of 3). The run's claims record (``claims.jsonl``) shows no conflicting
claims overlapping, and at least two host cycles overlapping (the waves are real).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackcheck.atomic.backends import backend_for
from stackcheck.atomic.journal import DeploymentJournal, journal_path
from stackcheck.claims import Timeline, violations
from stackcheck.etcd import session_for
from stackcheck.lab import Lab
from stackcheck.ssh import close_all
from stackcheck_provisioners import ProvisionConfig, get_provisioner

REPO = Path(__file__).resolve().parent.parent
OPTIONS = {"name": "pgw", "subnet": "10.227.5.0/24", "kubernetes": "false"}
HOSTS = 5
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="a local lab needs root")
pytestmark = [pytest.mark.lab, needs_root]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    provisioner = get_provisioner("local")
    config = ProvisionConfig(run_id="waves", state_dir=tmp_path_factory.mktemp("pgw") / "lab",
                             hosts=HOSTS, options=OPTIONS)
    try:
        yield provisioner.create(config)
    finally:
        close_all()
        provisioner.abort(config)


def _booted(lab: Lab) -> dict[str, str]:
    out = {}
    for host in lab.hosts:
        status = backend_for(lab, host).status()
        out[host.name] = status.booted.checksum if status.booted else "none"
    return out


def _suite(lab: Lab, *args: str, files: tuple[str, ...] = (
        "suites/atomic/test_upgrade_rollback.py",)) -> subprocess.Popen:
    assert lab.state_dir is not None
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", *files,
         f"--inventory={Path(lab.state_dir) / 'inventory.yaml'}", "-p", "no:cacheprovider",
         "--no-must-gather", "--no-history", "-q", "--tb=line", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ))


def _newest_run(before: set[Path], holding: str = "test_upgrade_reboot_and_rollback") -> Path:
    """The run dir this test's run made: other tests of the selftest (other xdist workers)
    make run dirs in the same folder meanwhile, so the one whose claims name ``holding``."""
    runs = set((REPO / ".stackcheck" / "runs").iterdir()) - before
    mine = [p for p in runs if (p / "claims.jsonl").exists()
            and holding in (p / "claims.jsonl").read_text()]
    return max(mine or runs, key=lambda p: p.stat().st_mtime)


class Quorum:
    """Healthy etcd members, sampled every ``every`` s from another thread."""

    def __init__(self, lab: Lab, every: float = 0.25) -> None:
        assert lab.etcd is not None
        self.endpoints, self.every = lab.etcd.endpoints, every
        self.session = session_for(lab.etcd)
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _healthy(self, endpoint: str) -> bool:
        try:
            return self.session.get(f"{endpoint}/health", timeout=1).json().get("health") == "true"
        except Exception:  # noqa: BLE001 - down is what we count
            return False

    def _loop(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.time(), sum(map(self._healthy, self.endpoints))))
            time.sleep(self.every)

    def __enter__(self) -> Quorum:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def test_waves_keep_quorum_and_conflicting_claims_never_overlap(lab: Lab) -> None:
    start = _booted(lab)
    members = len(lab.hosts_with("etcd"))
    quorum = members // 2 + 1
    before = set((REPO / ".stackcheck" / "runs").glob("*"))
    with Quorum(lab) as sampled:
        proc = _suite(lab, "-n", "2")
        output, _ = proc.communicate(timeout=1200)
    assert proc.returncode == 0, output[-4000:]
    counts = [n for _, n in sampled.samples]
    assert len(counts) > 20, f"too few samples of the etcd member count: {counts}"
    assert max(counts) == members, f"never saw all {members} members healthy: {counts}"
    assert min(counts) >= quorum, (
        f"a wave took etcd below quorum ({quorum} of {members}): healthy members sampled "
        f"{counts}")
    held = Timeline(_newest_run(before) / "claims.jsonl").read()
    cycles = [h for h in held if "test_upgrade_reboot_and_rollback" in h.check]
    assert len(cycles) == HOSTS, [h.check for h in cycles]
    assert violations(held) == []
    overlapping = max(sum(1 for b in cycles if b.start < a.end and a.start < b.end)
                      for a in cycles)
    assert overlapping >= 2, "no two host cycles overlapped: the waves ran one host at a time"
    assert _booted(lab) == start


def test_an_interrupted_wave_restores_every_host(lab: Lab) -> None:
    start = _booted(lab)
    journal = DeploymentJournal(journal_path(lab, REPO))
    proc = _suite(lab, "-n", "0")
    deadline = time.monotonic() + 300
    while len(journal.pending()) < 2:  # two hosts of the first wave are being changed
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the wave never started"
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=900)
    assert "interrupted during a wave" in output, output[-3000:]
    assert journal.pending() == {}, f"hosts left in the journal: {journal.pending()}"
    assert _booted(lab) == start, output[-3000:]


def test_pods_made_before_a_reboot_are_started_again_before_the_ping_matrix(
        lab: Lab, tmp_path: Path) -> None:
    """Issue 27: the data-path pods are made once per worker; a host's reboot by a later
    disruptive check killed its pod, and the ping matrix then failed (Docker: the container
    stays exited) or "recovered" (Kubernetes restarts it) pairs on a healthy lab. In this
    order (pods first, then h5's cycle, then the matrix) the matrix must pass, having started
    h5's pod again."""
    alluredir = tmp_path / "allure"
    proc = _suite(lab, "-n", "0", "-k", "(pods_get and h5) or (rollback and h5) or pings",
                  f"--alluredir={alluredir}",
                  files=("suites/runtime/test_cni.py", "suites/atomic/test_upgrade_rollback.py",
                         "suites/flannel/test_datapath.py"))
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output[-4000:]
    assert "3 passed" in output, output[-2000:]
    said = [f.read_text() for f in alluredir.glob("*-attachment*")
            if "started again" in f.read_text(errors="replace")]
    assert any("h5: its container was exited; started again" in t for t in said), (
        "the ping matrix passed without h5's pod being started again: did the reboot not "
        f"kill it? attachments saying 'started again': {said}")
