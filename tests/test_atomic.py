"""The atomic suite: parsers (on recorded ostree, rpm-ostree and bootc output, sources in
tests/data/atomic/README.md) and journal (no lab), then a real local lab.

On the lab the suite passes, and each fault is caught with a message naming the host and
both checksums: a default deployment changed behind the suite's back, a host on a different
commit, a rollback that does not swap, an accepted downgrade, a pending deployment made by
hand, a missing ref (one line, no library frames). The disruptive checks leave every host's
``ostree admin status`` as it was (booted, rollback, origins, serials), and a run that dies
mid-cycle is put back, whole layout included, by the next one. Faults are injected into the
suite's own process by a small pytest plugin (``-p atomic_inject``) that wraps the
provisioner's reboot or a backend operation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from stackcheck.atomic.backends import (
    AtomicError,
    DriverRefusal,
    Result,
    RpmOstree,
    backend_for,
    cause,
    pinned_image,
)
from stackcheck.atomic.boot import reboot, reboot_policy
from stackcheck.atomic.journal import (
    DeploymentJournal,
    Entry,
    heal,
    journal_path,
    restore,
    snapshot,
)
from stackcheck.atomic.model import (
    IMAGE,
    NONE,
    REFSPEC,
    UNKNOWN,
    StatusFormatError,
    bootc_cached_update,
    majority,
    parse_bootc_status,
    parse_ostree_status,
    parse_rpm_ostree_status,
)
from stackcheck.lab import Lab
from stackcheck.ssh import close_all
from stackcheck_provisioners import ProvisionConfig, get_provisioner
from stackcheck_provisioners.hostlab import state

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests/data/atomic"  # recorded output; provenance in its README.md
NAME, SUBNET = "atomt", "10.213.31.0/24"
OPTIONS = {"name": NAME, "subnet": SUBNET, "kubernetes": "false"}
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="a local lab needs root")

A, B, C = "a" * 64, "b" * 64, "c" * 64

OSTREE_STATUS = f"""  stackcheck {C}.0 (pending)
    Version: 3
    origin refspec: stackcheck:stackcheck/stable
* stackcheck {B}.1
    Version: 2
    origin refspec: stackcheck:stackcheck/stable
  stackcheck {A}.0 (rollback)
    Version: 1
    origin refspec: stackcheck:stackcheck/stable
"""

RPM_OSTREE_JSON = json.dumps({"deployments": [
    {"id": f"fedora-atomic-{B}.0", "osname": "fedora-atomic", "serial": 0, "checksum": B,
     "version": "27.2", "timestamp": 1510100000, "booted": True,
     "origin": "fedora-atomic:fedora/27/x86_64/atomic-host"},
    {"id": f"fedora-atomic-{A}.0", "osname": "fedora-atomic", "serial": 0, "checksum": A,
     "version": "27.1", "timestamp": 1510000000, "booted": False,
     "origin": "fedora-atomic:fedora/27/x86_64/atomic-host"},
], "transaction": None})


# --- no lab ---------------------------------------------------------------------------


def test_parse_ostree_status() -> None:
    status = parse_ostree_status(OSTREE_STATUS)
    assert [d.id for d in status.deployments] == [f"{C}.0", f"{B}.1", f"{A}.0"]
    assert status.booted is not None and status.booted.checksum == B
    assert status.pending is not None and status.pending.checksum == C
    assert status.rollback is not None and status.rollback.checksum == A
    assert status.booted.version == "2"
    assert {d.origin for d in status.deployments} == {"stackcheck:stackcheck/stable"}
    assert parse_ostree_status("").booted is None


def test_parse_rpm_ostree_status() -> None:
    status = parse_rpm_ostree_status(RPM_OSTREE_JSON)
    assert status.booted is not None and status.booted.checksum == B
    assert status.pending is None
    assert status.rollback is not None and status.rollback.checksum == A
    assert status.booted.origin == "fedora-atomic:fedora/27/x86_64/atomic-host"
    assert status.booted.timestamp == 1510100000


def test_majority() -> None:
    assert majority({"h1": A, "h2": B, "h3": A}) == (A, {A: ["h1", "h3"], B: ["h2"]})
    assert majority({"h1": A, "h2": B})[0] is None
    assert majority({})[0] is None


def test_reboot_policy(ssh_files: Path) -> None:
    lab = Lab.model_validate({"ssh": {"known_hosts": ssh_files / "known_hosts"},
                              "hosts": [{"name": "h1", "address": "10.0.0.1"}]})
    assert not reboot_policy(lab, False).allowed
    assert "--allow-reboot" in reboot_policy(lab, False).reason
    assert reboot_policy(lab, True).allowed
    lab.provisioner = "local"
    assert reboot_policy(lab, False).allowed
    assert "simulates the reboot" in reboot_policy(lab, False).reason


def test_journal_keeps_the_first_start_and_removes_itself(tmp_path: Path) -> None:
    journal = DeploymentJournal(tmp_path / "atomic-x.json")
    journal.record("h1", Entry(A, "r:b", True))
    journal.record("h1", Entry(B, "r:b", True))  # a later start does not overwrite the first
    journal.record("h2", Entry(C, None, False))
    assert journal.pending() == {"h1": Entry(A, "r:b", True), "h2": Entry(C, None, False)}
    journal.clear("h1")
    journal.clear("h2")
    assert journal.pending() == {}
    assert not (tmp_path / "atomic-x.json").exists()


# --- recorded output of today's hosts (tests/data/atomic/README.md names each source) ---


def data(name: str) -> str:
    return (DATA / name).read_text()


def test_rpm_ostree_host_booted_from_a_container_image() -> None:
    """coreos/zincati fixture rpm-ostree-oci-status.json: FCOS 41 on an OCI image."""
    status = parse_rpm_ostree_status(data("rpm-ostree-oci-status.json"))
    booted = status.booted
    assert booted is not None and booted.origin is None and booted.origin_kind == IMAGE
    assert booted.image == ("ostree-remote-image:fedora:registry:quay.io/fedora/fedora-coreos"
                            "@sha256:c4a15145a232d882ccf2ed32d22c06c01a7cf62317eb966a98340ae4"
                            "bd56dfa6")
    assert booted.source == booted.image and booted.follows() == booted.image
    digest = "sha256:c4a15145a232d882ccf2ed32d22c06c01a7cf62317eb966a98340ae4bd56dfa6"
    assert booted.digest == digest and booted.identity == digest
    assert booted.version == "41.20250105.2.0" and status.update_driver is None
    assert status.pending is None and status.rollback is None


def test_rpm_ostree_staged_finalization_locked_update_is_pending() -> None:
    """coreos/zincati fixture rpm-ostree-staged.json: an update staged by Zincati."""
    status = parse_rpm_ostree_status(data("rpm-ostree-staged.json"))
    pending, booted = status.pending, status.booted
    assert pending is not None and booted is not None
    assert pending.checksum.startswith("967b7b8d") and pending.staged
    assert pending.finalization_locked and pending.origin_kind == REFSPEC
    assert booted.checksum.startswith("01f074cc") and pending.identity != booted.identity
    assert status.role(pending) == "default, pending, staged, finalization locked"


def test_zincati_driven_host_names_its_driver() -> None:
    """The recorded staged status plus rpm-ostree's update-driver object (key names from
    rpm-ostree's daemon: driver-name, driver-sd-unit), as Zincati registers itself."""
    raw = json.loads(data("rpm-ostree-staged.json"))
    raw["update-driver"] = {"driver-name": "Zincati", "driver-sd-unit": "zincati.service"}
    assert parse_rpm_ostree_status(json.dumps(raw)).update_driver == "Zincati (zincati.service)"


def test_ostree_text_with_finalization_lock_agrees_with_rpm_ostree_json() -> None:
    text = parse_ostree_status(data("ostree-admin-status-finalization-locked.txt"))
    js = parse_rpm_ostree_status(data("rpm-ostree-staged.json"))
    assert [d.id for d in text.deployments] == [d.id for d in js.deployments]
    assert [(d.staged, d.finalization_locked, d.booted) for d in text.deployments] == [
        (d.staged, d.finalization_locked, d.booted) for d in js.deployments]
    assert text.pending is not None and text.pending.origin == js.pending.origin


def test_ostree_text_staged_soft_reboot_pinned_and_unknown_origin() -> None:
    status = parse_ostree_status(data("ostree-admin-status-staged-soft-reboot.txt"))
    staged, booted, rollback = status.deployments
    assert status.pending is staged and status.booted is booted and status.rollback is rollback
    assert staged.staged and staged.soft_reboot and not staged.finalization_locked
    assert staged.origin_kind == UNKNOWN and staged.origin is None and staged.source is None
    assert "<unknown origin type>" in staged.follows()
    assert rollback.pinned and rollback.origin == "fedora:fedora/x86_64/coreos/stable"
    assert rollback.serial == 1 and booted.version == "nightly"
    no_origin = parse_ostree_status(f"* os {A}.0\n    origin: none\n").booted
    assert no_origin is not None and no_origin.origin_kind == NONE


def test_ostree_2022_7_recorded_pending_deployment() -> None:
    status = parse_ostree_status(data("ostree-2022.7-admin-status-pending.txt"))
    assert [d.serial for d in status.deployments] == [1, 0, 0]
    assert status.pending is not None and status.booted is not None
    assert status.pending.checksum == status.rollback.checksum  # the rollback, deployed again
    assert status.pending.identity != status.booted.identity
    assert parse_ostree_status(data("ostree-2022.7-admin-status-booted.txt")).pending is None


def test_bootc_status_staged_and_booted_images() -> None:
    """containers/bootc fixture spec-staged-booted.yaml."""
    status = parse_bootc_status(data("bootc-spec-staged-booted.yaml"))
    staged, booted = status.deployments
    assert status.pending is staged and staged.staged and status.booted is booted
    assert booted.image == staged.image == "quay.io/example/someimage:latest"
    assert booted.digest == ("sha256:736b359467c9437c1ac915acaae952aad854e07eb4a16a94999a48af08c8"
                             "3c34")
    assert staged.identity != booted.identity  # same tag, another image: differs
    assert booted.checksum.startswith("26836632") and booted.serial == 0


def test_bootc_status_other_shapes() -> None:
    only = parse_bootc_status(data("bootc-spec-v1.yaml"))
    assert [d.booted for d in only.deployments] == [True] and only.pending is None
    assert only.booted is not None and only.booted.version == "20231230.1"
    plain = parse_bootc_status(data("bootc-spec-rfe-ostree-deployment.yaml"))
    assert plain.booted is not None and plain.booted.image is None
    assert plain.booted.origin_kind == UNKNOWN and plain.pending is not None
    assert parse_bootc_status(data("bootc-spec-v1-null.json")).deployments == []
    with pytest.raises(StatusFormatError, match=r"apiVersion 'org\.containers\.bootc/v9'"):
        parse_bootc_status(data("bootc-spec-v1-null.json").replace("/v1", "/v9"))


def test_bootc_cached_update_after_a_check() -> None:
    """``cachedUpdate`` is null in the recorded fixture; the second case puts the recorded
    staged image there (built: as ``bootc upgrade --check`` would leave it)."""
    assert bootc_cached_update(data("bootc-spec-rfe-ostree-deployment.yaml")) is None
    raw = yaml.safe_load(data("bootc-spec-staged-booted.yaml"))
    raw["status"]["booted"]["cachedUpdate"] = raw["status"]["staged"]["image"]
    assert bootc_cached_update(yaml.safe_dump(raw)) == (
        raw["status"]["staged"]["image"]["imageDigest"])


def test_a_failed_command_is_one_line_with_the_hosts_cause() -> None:
    backend = RpmOstree("h2", connect=lambda: None)
    recorded = data("ostree-2022.7-upgrade-missing-ref.txt")
    assert cause(recorded) == "refspec os/missing not found"
    # issue 28's report of the same fault (its text, as the issue quotes it)
    reported = "Freed objects: 166 bytes\n\nerror: Refspec 'lab:os/missing' not found\n"
    err = backend.failure(Result("ostree admin upgrade", 1, "", reported), "upgrade")
    assert str(err) == "h2: upgrade failed: refspec lab:os/missing not found"
    assert err.output == reported.strip() and err.command == "ostree admin upgrade"
    refusal = backend.failure(Result("rpm-ostree upgrade", 1, "",
                                     data("rpm-ostree-driver-refusal.txt")), "upgrade")
    assert isinstance(refusal, DriverRefusal) and isinstance(refusal, AtomicError)
    assert str(refusal) == ("h2: upgrade refused: updates and deployments are driven by Zincati "
                            "(zincati.service) (--atomic-bypass-driver lets the suite bypass it)")
    assert "\n" not in str(refusal)


def test_driven_rpm_ostree_commands_bypass_only_when_told() -> None:
    backend = RpmOstree("h1", connect=lambda: None)
    assert backend._driven("upgrade") == ["rpm-ostree", "upgrade"]
    backend.bypass_driver = True
    assert backend._driven("rollback") == ["rpm-ostree", "rollback", "--bypass-driver"]


def test_image_reference_pinned_to_its_digest() -> None:
    d = "sha256:" + "1" * 64
    assert pinned_image("ostree-unverified-registry:quay.io/fedora/fedora-coreos:stable", d) == (
        f"ostree-unverified-registry:quay.io/fedora/fedora-coreos@{d}")
    pinned = f"ostree-remote-image:fedora:registry:quay.io/fedora/fedora-coreos@{d}"
    assert pinned_image(pinned, "sha256:" + "2" * 64) == pinned
    assert pinned_image("quay.io/x:1", None) == "quay.io/x:1"


# --- a real lab -----------------------------------------------------------------------

INJECT = '''
"""Faults injected into the atomic suite's process (test_atomic.py)."""
import os

from stackcheck_provisioners.existing import ExistingProvisioner
from stackcheck_provisioners.local.provisioner import LocalProvisioner
from stackcheck.atomic import backends

MODE = os.environ["ATOMIC_INJECT"]
HOST = os.environ["ATOMIC_INJECT_HOST"]
_reboots = []


def _wrap(cls):
    original = cls.reboot

    def reboot(self, lab, host, timeout=600):
        if host.name == HOST and not _reboots and MODE == "cancel-upgrade":
            # behind the suite's back: the booted deployment becomes the default again
            b = backends.backend_for(lab, host)
            b.check(b.admin("undeploy", "0"), "cancelling the staged upgrade")
        result = original(self, lab, host, timeout)
        if host.name == HOST:
            _reboots.append(host.name)
            if MODE == "die-after-reboot":
                os._exit(9)  # like kill -9: no finally, no fixture teardown
        return result

    cls.reboot = reboot


_wrap(LocalProvisioner)
_wrap(ExistingProvisioner)
if MODE == "rollback-noop":
    backends.Ostree.rollback = lambda self, status=None: backends.Result("(no-op)", 0, "", "")
if MODE == "allow-downgrade":
    _older = backends.Ostree.upgrade_to_older

    def upgrade_to_older(self, checksum):
        booted = self.booted()
        return self.run(self.admin("upgrade", f"--os={booted.osname}", "--allow-downgrade",
                                   f"--override-commit={checksum}"))

    backends.Ostree.upgrade_to_older = upgrade_to_older
'''


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    provisioner = get_provisioner("local")
    config = ProvisionConfig(run_id="atomic", state_dir=tmp_path_factory.mktemp("atomlab") / "lab",
                             hosts=3, options=OPTIONS)
    try:
        yield provisioner.create(config)
    finally:
        close_all()
        provisioner.abort(config)


@pytest.fixture(scope="module")
def commits(lab: Lab) -> dict[str, str]:
    """{'old': v1, 'booted': v2, 'upgrade': v3}: the lab's commits (the same on every host)."""
    assert lab.state_dir is not None
    info = (state.read(Path(lab.state_dir)) or {})["hosts"]["h1"]["ostree"]
    return {"old": info["rollback"], "booted": info["deployed"], "upgrade": info["upgrade"]}


@pytest.fixture(scope="module")
def as_found(lab: Lab) -> dict[str, Entry]:
    """Every host's deployments as the lab was built (booted, rollback, origins, serials)."""
    found = {}
    for host in lab.hosts:
        backend = backend_for(lab, host)
        found[host.name] = snapshot(backend, backend.status(), reboot_allowed=True)
    return found


def admin_status(lab: Lab) -> dict[str, str]:
    """``ostree admin status`` of every host, as the host prints it (booted view)."""
    out = {}
    for host in lab.hosts:
        backend = backend_for(lab, host)
        out[host.name] = backend.check(backend.admin("status"), "reading deployments").stdout
    return out


@pytest.fixture
def restored(lab: Lab, as_found: dict[str, Entry]) -> Iterator[None]:
    """After a test: every host as the lab was built again, nothing left in the journal."""
    yield
    assert lab.state_dir is not None
    journal = DeploymentJournal(journal_path(lab, REPO))
    left = journal.pending()
    provisioner = get_provisioner("local")
    for host in lab.hosts:
        restore(lab, provisioner, host, as_found[host.name])
        journal.clear(host.name)
    assert not left, f"the suite left journal entries: {left}"


def run_suite(lab: Lab, *args: str, inject: str | None = None, host: str = "h2",
              tmp_path: Path | None = None, via: str = "local",
              inventory: Path | None = None) -> subprocess.CompletedProcess:
    """Run the atomic suite in a fresh pytest process against the lab.

    ``via="local"``: the local provisioner adopts the running lab (in-process reboots, as
    ``./run.sh conformance``); ``via="inventory"``: the lab's inventory (or ``inventory``) and
    SSH only (reboots through the service_control template, as on real hosts).
    """
    assert lab.state_dir is not None
    if via == "inventory":
        target = [f"--inventory={inventory or Path(lab.state_dir) / 'inventory.yaml'}"]
    else:
        target = ["--provisioner=local", f"--lab-dir={lab.state_dir}", "--lab-hosts=3",
                  *(f"--lab-option={k}={v}" for k, v in OPTIONS.items())]
    env = dict(os.environ)
    plugin = []
    if inject:
        assert tmp_path is not None
        (tmp_path / "atomic_inject.py").write_text(INJECT)
        env.update(ATOMIC_INJECT=inject, ATOMIC_INJECT_HOST=host,
                   PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path),
                                                            env.get("PYTHONPATH")])))
        plugin = ["-p", "atomic_inject"]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *target, *plugin, "-p", "no:cacheprovider",
         "--no-must-gather", "--no-history", "-q", "-rfEs",
         "--tb=line", *args],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False, env=env,
    )


def out(result: subprocess.CompletedProcess) -> str:
    return result.stdout[-6000:] + result.stderr[-3000:]


@pytest.mark.lab
@needs_root
def test_suite_passes_on_a_healthy_lab(lab: Lab, restored: None) -> None:
    result = run_suite(lab, "suites/atomic")
    assert result.returncode == 0, out(result)
    assert "20 passed" in result.stdout, out(result)
    assert "skipped" not in result.stdout, out(result)


@pytest.mark.lab
@needs_root
def test_options_reboot_policy_and_refspec(lab: Lab, commits: dict[str, str],
                                           tmp_path: Path) -> None:
    """A lab that is not local is never rebooted without --allow-reboot; --atomic-refspec rules."""
    assert lab.state_dir is not None
    inventory = (Path(lab.state_dir) / "inventory.yaml").read_text()
    foreign = tmp_path / "inventory.yaml"
    foreign.write_text(inventory.replace("provisioner: local", "provisioner: existing"))
    result = run_suite(lab, "--atomic-refspec=elsewhere:os/stable", "-k",
                       "h1 and (rollback or origin)", "suites/atomic", via="inventory",
                       inventory=foreign)
    assert result.returncode == 1, out(result)
    assert "rebooting real hosts needs --allow-reboot" in result.stdout, out(result)
    assert (f"h1: the booted deployment {commits['booted']} follows stackcheck:stackcheck/stable;"
            " expected elsewhere:os/stable (--atomic-refspec)") in result.stdout, out(result)


@pytest.mark.lab
@needs_root
def test_default_changed_behind_the_suites_back_is_caught(
    lab: Lab, commits: dict[str, str], restored: None, tmp_path: Path
) -> None:
    # over the inventory and SSH only, as on real hosts: the reboot runs the service_control
    # template and the suite waits for the host's new boot id over SSH
    result = run_suite(lab, "suites/atomic/test_upgrade_rollback.py", "-k", "h2",
                       inject="cancel-upgrade", tmp_path=tmp_path, via="inventory")
    assert result.returncode == 1, out(result)
    assert (f"h2: after the upgrade and a reboot expected the new commit {commits['upgrade']} "
            f"booted; booted is {commits['booted']}") in result.stdout, out(result)


@pytest.mark.lab
@needs_root
def test_host_on_a_different_commit_is_caught(
    lab: Lab, commits: dict[str, str], restored: None
) -> None:
    h2 = lab.host("h2")
    backend = backend_for(lab, h2)
    backend.upgrade()
    reboot(lab, get_provisioner("local"), h2)
    assert backend.booted().checksum == commits["upgrade"]
    result = run_suite(lab, "suites/atomic/test_deployments.py")
    assert result.returncode == 1, out(result)
    assert (f"odd ones out: h2 booted {commits['upgrade']}; the majority (h1, h3) booted "
            f"{commits['booted']}") in result.stdout, out(result)
    assert (f"odd ones out: h2 next boots {commits['upgrade']} (version 3); the majority "
            f"(h1, h3) next boots {commits['booted']}") in result.stdout, out(result)
    assert result.stdout.count("FAILED") == 2, "only the same-commit and next-boot checks fail"


@pytest.mark.lab
@needs_root
def test_rollback_that_does_not_swap_is_caught(
    lab: Lab, commits: dict[str, str], restored: None, tmp_path: Path
) -> None:
    result = run_suite(lab, "suites/atomic/test_upgrade_rollback.py", "-k", "h2",
                       inject="rollback-noop", tmp_path=tmp_path)
    assert result.returncode == 1, out(result)
    assert (f"h2: after rollback expected the default deployment {commits['booted']}; the "
            f"default is still {commits['upgrade']}") in result.stdout, out(result)
    # the suite put the host back although the check failed (and rollback was broken)
    assert backend_for(lab, lab.host("h2")).booted().checksum == commits["booted"]


@pytest.mark.lab
@needs_root
def test_accepted_downgrade_is_caught(
    lab: Lab, commits: dict[str, str], restored: None, tmp_path: Path
) -> None:
    result = run_suite(lab, "suites/atomic/test_downgrade.py", "-k", "h2",
                       inject="allow-downgrade", tmp_path=tmp_path)
    assert result.returncode == 1, out(result)
    assert (f"h2: the upgrade path accepted the older commit {commits['old']} (parent of the "
            f"booted {commits['booted']})") in result.stdout, out(result)
    assert backend_for(lab, lab.host("h2")).status().default.checksum == commits["booted"]


@pytest.mark.lab
@needs_root
def test_run_killed_mid_cycle_is_restored_by_the_next(
    lab: Lab, commits: dict[str, str], restored: None, tmp_path: Path
) -> None:
    before = admin_status(lab)
    killed = run_suite(lab, "suites/atomic/test_upgrade_rollback.py", "-k", "h3",
                       inject="die-after-reboot", host="h3", tmp_path=tmp_path)
    assert killed.returncode == 9, out(killed)
    h3 = backend_for(lab, lab.host("h3"))
    assert h3.booted().checksum == commits["upgrade"], "the killed run left h3 upgraded"
    journal = DeploymentJournal(journal_path(lab, REPO))
    left = journal.pending()
    assert list(left) == ["h3"] and left["h3"].checksum == commits["booted"], left
    assert left["h3"].origin == "stackcheck:stackcheck/stable" and left["h3"].reboot_allowed
    assert [d["checksum"] for d in left["h3"].layout] == [commits["booted"], commits["old"]]
    done = heal(lab, get_provisioner("local"), REPO)
    assert done and done[0].startswith(f"h3: back on {commits['booted']}"), done
    assert h3.booted().checksum == commits["booted"]
    assert admin_status(lab)["h3"] == before["h3"], "heal left h3 not as found"
    assert journal.pending() == {}


@pytest.mark.lab
@needs_root
def test_disruptive_checks_leave_every_host_as_found(lab: Lab, restored: None) -> None:
    """Issue 28: after upgrade/reboot/rollback/reboot and the downgrade attempt, every host's
    ``ostree admin status`` is what it was: booted v2, rollback v1, origins, serials. Twice,
    so serials that grew with every run would show."""
    before = admin_status(lab)
    for _ in range(2):
        result = run_suite(lab, "suites/atomic/test_upgrade_rollback.py",
                           "suites/atomic/test_downgrade.py")
        assert result.returncode == 0, out(result)
        assert "6 passed" in result.stdout, out(result)
        assert admin_status(lab) == before


@pytest.mark.lab
@needs_root
def test_pending_deployment_is_caught(lab: Lab, commits: dict[str, str],
                                      restored: None) -> None:
    """The rollback deployed again by hand on h2 (``ostree admin deploy``), not rebooted."""
    h2 = backend_for(lab, lab.host("h2"))
    old = h2.status().rollback
    assert old is not None and old.checksum == commits["old"]
    h2.redeploy(old.osname, old.checksum, h2.origin_text(old), as_default=True)
    result = run_suite(lab, "suites/atomic/test_deployments.py")
    assert result.returncode == 1, out(result)
    assert (f"h2: the next boot runs {commits['old']} (version 1) (pending, following "
            f"stackcheck:stackcheck/stable), not the booted {commits['booted']} (version 2): a "
            "reboot changes the OS") in result.stdout, out(result)
    assert (f"odd ones out: h2 next boots {commits['old']} (version 1) (pending); the majority "
            f"(h1, h3) next boots {commits['booted']}") in result.stdout, out(result)
    assert result.stdout.count("FAILED") == 2, "only the two next-boot checks fail"


@pytest.mark.lab
@needs_root
def test_missing_ref_is_one_line_naming_host_and_cause(lab: Lab, commits: dict[str, str],
                                                       restored: None) -> None:
    """Issue 28: the booted origin names a ref the remote lacks; no library frames."""
    h2 = backend_for(lab, lab.host("h2"))
    booted = h2.booted()
    path = f"/ostree/deploy/{booted.osname}/deploy/{booted.id}.origin"
    good = h2.origin_text(booted)
    broken = "[origin]\nrefspec=stackcheck:os/missing\n"
    h2.check(h2.wrap(["sh", "-c", f"printf %s '{broken}' > {path}"]), "breaking the origin")
    try:
        result = run_suite(lab, "--tb=long", "suites/atomic/test_upgrade_rollback.py", "-k", "h2")
    finally:
        h2.check(h2.wrap(["sh", "-c", f"printf %s '{good}' > {path}"]),
                 "putting the origin back")
    assert result.returncode == 1, out(result)
    assert ("h2: upgrade of stackcheck:os/missing failed: refspec os/missing not found"
            in result.stdout), out(result)
    assert "backends.py" not in result.stdout and "Traceback" not in result.stdout, out(result)


@pytest.mark.lab
@needs_root
def test_inactive_services_asked_and_awaited_in_one_command(lab: Lab) -> None:
    """Issue 27: ``Provisioner.inactive`` (the cycle's services before and after a reboot):
    over SSH one command, however many services and however long the wait, bounded, saying
    which are still inactive; the local provisioner's in-process answer agrees."""
    from stackcheck.provisioner import Provisioner
    from stackcheck.waits import RECORDS
    from stackcheck_provisioners.existing import ExistingProvisioner

    over_ssh, local = ExistingProvisioner(), get_provisioner("local")
    assert type(over_ssh).inactive is Provisioner.inactive  # the default, over SSH
    h3 = lab.host("h3")
    services = ["sshd", "docker", "etcd"]
    assert over_ssh.inactive(lab, h3, services) == []
    assert local.inactive(lab, h3, services) == []
    assert local.service(lab, h3, "docker", "stop").ok
    try:
        assert local.inactive(lab, h3, services) == ["docker"]
        started = len(RECORDS)
        assert over_ssh.inactive(lab, h3, services, timeout=2) == ["docker"]
        waited = RECORDS[started:]
        assert [(w.ok, w.polls >= 2, 2 <= w.seconds < 20) for w in waited] == [
            (False, True, True)], waited
        assert over_ssh.inactive(lab, h3, ["nosuchservice"]) == ["nosuchservice"]
    finally:
        assert local.service(lab, h3, "docker", "start").ok
    assert over_ssh.inactive(lab, h3, services, timeout=30) == []
