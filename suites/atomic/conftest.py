"""Fixtures of the atomic suite: each host's backend, the reboot policy, restoring deployments.

A failure of an ostree/rpm-ostree/bootc command ends its check with one line naming the host
and the host's own cause (``h2: upgrade failed: refspec lab:os/missing not found``); the
command and its whole output are attached as evidence, never a library traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackcheck.atomic.backends import AtomicError, Backend, backend_for
from stackcheck.atomic.boot import RebootPolicy, reboot_policy
from stackcheck.atomic.journal import (
    DeploymentJournal,
    RestoreError,
    journal_path,
    restore,
    restore_status,
    snapshot,
)
from stackcheck.atomic.model import Status, majority
from stackcheck.lab import Host, Lab
from stackcheck.provisioner import Provisioner
from stackcheck_reports.evidence import attach_table, attach_text, step

BYPASS_OPTION = "--atomic-bypass-driver"


@dataclass(frozen=True)
class ExpectedRefspec:
    value: str
    source: str


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """An atomic failure is one line: the host and its cause (no library frames)."""
    report = yield
    excinfo = call.excinfo
    if excinfo is not None and report.failed and isinstance(excinfo.value,
                                                            AtomicError | RestoreError):
        report.longrepr = str(excinfo.value)
    return report


def _attach_output(outcome) -> None:
    """While the check is still open: the failed command and everything it printed."""
    exc = outcome.excinfo[1] if outcome.excinfo else None
    if isinstance(exc, AtomicError) and exc.output:
        attach_text(f"{exc.command or 'command'} (output)", exc.output)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    _attach_output((yield))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    _attach_output((yield))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item):
    _attach_output((yield))


def _bypass(config: pytest.Config) -> bool:
    return bool(config.getoption(BYPASS_OPTION, default=False))


def _backend(lab: Lab, host: Host, bypass: bool = False) -> Backend:
    try:
        return backend_for(lab, host, bypass_driver=bypass)
    except AtomicError as exc:
        pytest.fail(str(exc), pytrace=False)


def _status(backend: Backend) -> Status:
    try:
        return backend.status()
    except AtomicError as exc:
        if exc.output:
            attach_text(f"{backend.host}: {exc.command}", exc.output)
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def reboot_rules(request: pytest.FixtureRequest, lab: Lab) -> RebootPolicy:
    """May the suite reboot this lab's hosts (``--allow-reboot``; local labs always)?"""
    return reboot_policy(lab, bool(request.config.getoption("--allow-reboot", default=False)))


@pytest.fixture
def may_reboot(reboot_rules: RebootPolicy) -> RebootPolicy:
    """Skip a check that reboots when rebooting is not allowed."""
    if not reboot_rules.allowed:
        pytest.skip(reboot_rules.reason)
    return reboot_rules


@pytest.fixture
def atomic(request: pytest.FixtureRequest, lab: Lab, lab_host: Host) -> Backend:
    """The rpm-ostree/bootc/ostree backend of ``lab_host``."""
    return _backend(lab, lab_host, _bypass(request.config))


@pytest.fixture(scope="session")
def atomic_statuses(lab: Lab) -> Callable[[], dict[str, Status]]:
    """``atomic_statuses()``: the deployments of every atomic host, read now."""
    return lambda: {h.name: _status(_backend(lab, h)) for h in lab.hosts_with("atomic")}


@pytest.fixture(scope="session")
def expected_refspec(request: pytest.FixtureRequest, lab: Lab,
                     atomic_statuses: Callable[[], dict[str, Status]]) -> ExpectedRefspec:
    """The origin every host must follow (a refspec or an image reference): the option, the
    lab's fact, else the one most hosts' booted deployments follow."""
    option = request.config.getoption("--atomic-refspec", default=None)
    if option:
        return ExpectedRefspec(option, "--atomic-refspec")
    if lab.environment.get("ostree_refspec"):
        return ExpectedRefspec(lab.environment["ostree_refspec"], "the lab's ostree_refspec")
    origins = {name: s.booted.follows() for name, s in atomic_statuses().items()
               if s.booted is not None}
    value, groups = majority(origins)
    if value is None:
        listing = "; ".join(f"{', '.join(hosts)}: {origin}" for origin, hosts in groups.items())
        pytest.fail(f"no origin is followed by most atomic hosts ({listing}); "
                    "pass --atomic-refspec", pytrace=False)
    return ExpectedRefspec(value, f"followed by most hosts ({', '.join(groups[value])})")


@pytest.fixture(scope="session")
def deployment_journal(request: pytest.FixtureRequest, lab: Lab) -> DeploymentJournal:
    return DeploymentJournal(journal_path(lab, Path(request.config.rootpath)))


@pytest.fixture
def start_status(request: pytest.FixtureRequest, lab: Lab, lab_host: Host,
                 provisioner: Provisioner, atomic: Backend,
                 deployment_journal: DeploymentJournal,
                 reboot_rules: RebootPolicy) -> Iterator[Status]:
    """The host's deployments at the start; afterwards the host is back as it was found."""
    with started_on(lab, lab_host, provisioner, atomic, deployment_journal,
                    reboot_rules) as status:
        yield status


@pytest.fixture
def atomic_cycle(request: pytest.FixtureRequest, lab: Lab, provisioner: Provisioner,
                 deployment_journal: DeploymentJournal, reboot_rules: RebootPolicy,
                 ) -> Callable[[Callable[..., None]], Callable[[Host], None]]:
    """``atomic_cycle(body)``: ``work(host)`` for a rolling wave (``stackcheck_fixtures.claims``):
    the fixtures ``atomic``, ``may_reboot`` and ``start_status`` made for ``host`` in the wave's
    thread, then ``body(lab, lab_host, provisioner, atomic, may_reboot, start_status)``
    (``reboots=False``: a body that does not reboot runs where rebooting is not allowed)."""
    def prepared(body: Callable[..., None], reboots: bool = True) -> Callable[[Host], None]:
        def work(host: Host) -> None:
            if reboots and not reboot_rules.allowed:
                pytest.skip(reboot_rules.reason)
            backend = _backend(lab, host, _bypass(request.config))
            with started_on(lab, host, provisioner, backend, deployment_journal,
                            reboot_rules) as status:
                body(lab, host, provisioner, backend, reboot_rules, status)
        return work
    return prepared


@contextmanager
def started_on(lab: Lab, lab_host: Host, provisioner: Provisioner, atomic: Backend,
               deployment_journal: DeploymentJournal,
               reboot_rules: RebootPolicy) -> Iterator[Status]:
    """The host's deployments at the start; afterwards the host is back as it was found:
    booted on the same deployment, the same rollback (and pending) deployments, origins.

    Journaled first, so an interrupted run is restored by the next one; restored in a
    ``finally``, so a failing check leaves the host where it started. A host whose updates
    an agent drives (Zincati) is skipped, unless ``--atomic-bypass-driver``.
    """
    name = lab_host.name
    earlier = deployment_journal.pending().get(name)
    if earlier is not None:
        with step(f"{name}: restore {earlier.checksum}, left by an interrupted run"):
            restore(lab, provisioner, lab_host, earlier)
            deployment_journal.clear(name)
    status = _status(atomic)
    if status.booted is None:
        ids = ", ".join(d.id for d in status.deployments) or "none"
        pytest.fail(f"{name}: expected to be booted into an ostree deployment; ostree marks "
                    f"none booted (deployments: {ids})", pytrace=False)
    if status.update_driver and not atomic.bypass_driver:
        pytest.skip(f"{name}: updates and deployments are driven by {status.update_driver}; "
                    f"{BYPASS_OPTION} lets the suite upgrade and roll back anyway")
    entry = snapshot(atomic, status, reboot_rules.allowed)
    deployment_journal.record(name, entry)
    attach_table(f"{name}: deployments at the start ({atomic.describe()})", status.summary())
    try:
        yield status
    finally:
        with step(f"put {name} back as found: booted {entry.checksum}, "
                  f"{len(entry.layout)} deployment(s) in place"):
            actions, final = restore_status(lab, provisioner, lab_host, entry)
            attach_text(f"{name}: restore", "\n".join(actions) or "nothing to do")
            attach_table(f"{name}: deployments after the restore", final.summary())
        deployment_journal.clear(name)
