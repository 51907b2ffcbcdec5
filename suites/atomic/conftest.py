"""Fixtures of the atomic suite: each host's backend, the reboot policy, restoring deployments."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from reports.evidence import attach_table, attach_text, step
from stackcheck.atomic.backends import AtomicError, Backend, backend_for
from stackcheck.atomic.boot import RebootPolicy, reboot_policy
from stackcheck.atomic.journal import DeploymentJournal, Entry, journal_path, restore
from stackcheck.atomic.model import Status, majority
from stackcheck.lab import Host, Lab
from stackcheck.provisioner import Provisioner


@dataclass(frozen=True)
class ExpectedRefspec:
    value: str
    source: str


def _backend(lab: Lab, host: Host) -> Backend:
    try:
        return backend_for(lab, host)
    except AtomicError as exc:
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
def atomic(lab: Lab, lab_host: Host) -> Backend:
    """The ostree/rpm-ostree backend of ``lab_host``."""
    return _backend(lab, lab_host)


@pytest.fixture(scope="session")
def atomic_statuses(lab: Lab) -> Callable[[], dict[str, Status]]:
    """``atomic_statuses()``: the deployments of every atomic host, read now."""
    return lambda: {h.name: _backend(lab, h).status() for h in lab.hosts_with("atomic")}


@pytest.fixture(scope="session")
def expected_refspec(request: pytest.FixtureRequest, lab: Lab,
                     atomic_statuses: Callable[[], dict[str, Status]]) -> ExpectedRefspec:
    """The origin every host must follow: the option, the lab's fact, else the majority's."""
    option = request.config.getoption("--atomic-refspec", default=None)
    if option:
        return ExpectedRefspec(option, "--atomic-refspec")
    if lab.environment.get("ostree_refspec"):
        return ExpectedRefspec(lab.environment["ostree_refspec"], "the lab's ostree_refspec")
    origins = {name: (s.booted.origin or "(none)") for name, s in atomic_statuses().items()
               if s.booted is not None}
    value, groups = majority(origins)
    if value is None:
        pytest.fail(f"no origin refspec is followed by most atomic hosts ({groups}); "
                    "pass --atomic-refspec", pytrace=False)
    return ExpectedRefspec(value, f"followed by most hosts ({', '.join(groups[value])})")


@pytest.fixture(scope="session")
def deployment_journal(request: pytest.FixtureRequest, lab: Lab) -> DeploymentJournal:
    return DeploymentJournal(journal_path(lab, Path(request.config.rootpath)))


@pytest.fixture
def start_status(lab: Lab, lab_host: Host, provisioner: Provisioner, atomic: Backend,
                 deployment_journal: DeploymentJournal,
                 reboot_rules: RebootPolicy) -> Iterator[Status]:
    """The host's deployments at the start; afterwards the host is back on its booted commit."""
    with started_on(lab, lab_host, provisioner, atomic, deployment_journal,
                    reboot_rules) as status:
        yield status


@pytest.fixture
def atomic_cycle(lab: Lab, provisioner: Provisioner, deployment_journal: DeploymentJournal,
                 reboot_rules: RebootPolicy) -> Callable[[Callable[..., None]],
                                                         Callable[[Host], None]]:
    """``atomic_cycle(body)``: ``work(host)`` for a rolling wave (``fixtures.claims``): the
    fixtures ``atomic``, ``may_reboot`` and ``start_status`` made for ``host`` in the wave's
    thread, then ``body(lab, lab_host, provisioner, atomic, may_reboot, start_status)``."""
    def prepared(body: Callable[..., None]) -> Callable[[Host], None]:
        def work(host: Host) -> None:
            if not reboot_rules.allowed:
                pytest.skip(reboot_rules.reason)
            backend = _backend(lab, host)
            with started_on(lab, host, provisioner, backend, deployment_journal,
                            reboot_rules) as status:
                body(lab, host, provisioner, backend, reboot_rules, status)
        return work
    return prepared


@contextmanager
def started_on(lab: Lab, lab_host: Host, provisioner: Provisioner, atomic: Backend,
               deployment_journal: DeploymentJournal,
               reboot_rules: RebootPolicy) -> Iterator[Status]:
    """The host's deployments at the start; afterwards the host is back on its booted commit.

    Journaled first, so an interrupted run is restored by the next one; restored in a
    ``finally``, so a failing check leaves the host where it started.
    """
    name = lab_host.name
    earlier = deployment_journal.pending().get(name)
    if earlier is not None:
        with step(f"{name}: restore {earlier.checksum}, left by an interrupted run"):
            restore(lab, provisioner, lab_host, earlier)
            deployment_journal.clear(name)
    status = atomic.status()
    if status.booted is None:
        ids = ", ".join(d.id for d in status.deployments) or "none"
        pytest.fail(f"{name}: expected to be booted into an ostree deployment; ostree marks "
                    f"none booted (deployments: {ids})", pytrace=False)
    entry = Entry(status.booted.checksum, status.booted.origin, reboot_rules.allowed)
    deployment_journal.record(name, entry)
    attach_table(f"{name}: deployments at the start ({atomic.describe()})", status.summary())
    try:
        yield status
    finally:
        with step(f"restore {name} to the commit it started on, {entry.checksum}"):
            actions = restore(lab, provisioner, lab_host, entry)
            attach_text(f"{name}: restore", "\n".join(actions) or "nothing to do")
        deployment_journal.clear(name)
