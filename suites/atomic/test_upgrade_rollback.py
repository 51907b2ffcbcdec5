"""Atomic hosts upgrade and roll back as whole trees, in rolling waves of hosts.

Per host: record the booted commit and boot id; upgrade (a new default, still booted on the
old one); reboot (the new commit booted, the old one the rollback deployment); roll back (the
old commit the default before the reboot); reboot (the old commit booted again). After each
reboot the services that were active before are active again. Whatever happens, the host ends
as it was found (``start_status``): booted on the same deployment, with the same rollback
deployment behind it, the same origins and serials.
"""

from __future__ import annotations

import time

import allure
import pytest

from stackcheck.atomic.backends import Backend
from stackcheck.atomic.boot import (
    ETCD_MEMBER_TIMEOUT,
    NODE_READY_TIMEOUT,
    RebootPolicy,
    active_services,
    reboot,
    wait_etcd_member,
    wait_node_ready,
    wait_services,
)
from stackcheck.atomic.model import Deployment, Status
from stackcheck.lab import Host, Lab
from stackcheck.provisioner import Provisioner
from stackcheck_reports.evidence import attach_table, attach_text, measure, step

pytestmark = [pytest.mark.disruptive, pytest.mark.role("atomic"), pytest.mark.claims("host"),
              allure.feature("upgrade and rollback")]


def _name(dep: Deployment | None) -> str:
    return dep.describe() if dep is not None else "nothing"


def _reboot(lab: Lab, provisioner: Provisioner, host: Host, policy: RebootPolicy,
            services: list[str], why: str) -> None:
    """Reboot, then wait for the services that were active before."""
    with step(f"reboot {host.name} ({why}); {policy.reason}"):
        began = time.time()
        record = reboot(lab, provisioner, host)
        attach_text(f"{host.name}: boot id", f"before {record.before}\nafter  {record.after}")
        measure("atomic reboot", record.seconds)
    with step(f"{host.name}: services active again: {', '.join(services)}"):
        inactive = wait_services(lab, provisioner, host, services)
    assert not inactive, (
        f"{host.name}: after the reboot ({why}) expected {', '.join(services)} active again; "
        f"inactive: {', '.join(inactive)}"
    )
    if lab.etcd is not None and host.has_role("etcd"):
        # before this cycle lets go of its quorum slot: the next member must not stop while
        # this one is still rejoining
        with step(f"{host.name}: etcd member serving again"):
            said = wait_etcd_member(lab, host)
        assert said is None, (
            f"{host.name}: after the reboot ({why}) expected its etcd member to serve again "
            f"(a leader, a linearizable read) within {ETCD_MEMBER_TIMEOUT:g}s; it says: {said}")
    if lab.kubernetes is not None and host.has_role("node"):
        with step(f"{host.name}: Kubernetes node Ready again"):
            seen = wait_node_ready(lab, host, since=began)
        assert seen is None, (
            f"{host.name}: after the reboot ({why}) expected its Kubernetes node Ready again "
            f"within {NODE_READY_TIMEOUT:g}s; the API says: {seen}")


def _status(atomic: Backend, host: Host, when: str) -> Status:
    status = atomic.status()
    attach_table(f"{host.name}: deployments {when}", status.summary())
    return status


@allure.id("atomic-upgrade-reboot-rollback")
@pytest.mark.rolling
def test_upgrade_reboot_and_rollback(lab_host: Host, rolling, atomic_cycle) -> None:
    """Run in rolling waves: hosts of one wave at once, each layer's quorum kept
    (``stackcheck_fixtures.claims``); ``--serial-disruptive``: one host at a time."""
    rolling.run(lab_host, atomic_cycle(upgrade_reboot_and_rollback))


def upgrade_reboot_and_rollback(
    lab: Lab, lab_host: Host, provisioner: Provisioner, atomic: Backend,
    may_reboot: RebootPolicy, start_status: Status,
) -> None:
    name = lab_host.name
    old = start_status.booted
    assert old is not None
    services = active_services(lab, provisioner, lab_host)
    attach_text(f"{name}: services active before", "\n".join(services))

    if atomic.kind == "ostree" and not old.origin:
        pytest.skip(f"{name}: the booted deployment follows {old.follows()}: plain ostree "
                    "upgrades only an origin refspec (an image origin needs rpm-ostree or bootc)")
    with step(f"{name}: is there a newer commit for {old.follows()}?"):
        check = atomic.check_upgrade(start_status)
        attach_text(f"{name}: upgrade check", check.detail)
    if not check.available:
        pytest.skip(f"{name}: nothing to upgrade: {check.detail}")

    with step(f"{name}: upgrade from {old.checksum}"):
        atomic.upgrade(start_status)
        staged = _status(atomic, lab_host, "after the upgrade")
    new = staged.default
    assert new is not None and new.checksum != old.checksum, (
        f"{name}: expected the upgrade to stage a new default deployment; the default is "
        f"{_name(new)}, the booted commit is {old.checksum}")
    if check.target:
        assert new.checksum == check.target, (
            f"{name}: expected the upgrade to stage {check.target} (what the check found); "
            f"it staged {new.checksum}")
    assert staged.booted is not None and staged.booted.checksum == old.checksum, (
        f"{name}: before the reboot expected {old.checksum} still booted; booted is "
        f"{_name(staged.booted)}")

    _reboot(lab, provisioner, lab_host, may_reboot, services, "into the upgrade")
    upgraded = _status(atomic, lab_host, "after the reboot into the upgrade")
    assert upgraded.booted is not None and upgraded.booted.checksum == new.checksum, (
        f"{name}: after the upgrade and a reboot expected the new commit {new.checksum} "
        f"booted; booted is {_name(upgraded.booted)} (the commit before was {old.checksum})")
    assert upgraded.rollback is not None and upgraded.rollback.checksum == old.checksum, (
        f"{name}: after the upgrade expected the old commit {old.checksum} as rollback "
        f"deployment; the rollback deployment is {_name(upgraded.rollback)}")

    with step(f"{name}: roll back to {old.checksum}"):
        atomic.rollback(upgraded)
        swapped = _status(atomic, lab_host, "after the rollback")
    assert swapped.default is not None and swapped.default.checksum == old.checksum, (
        f"{name}: after rollback expected the default deployment {old.checksum}; the default "
        f"is still {_name(swapped.default)} (booted {_name(swapped.booted)})")
    assert swapped.booted is not None and swapped.booted.checksum == new.checksum, (
        f"{name}: a rollback must not change what is booted before the reboot; expected "
        f"{new.checksum} booted, booted is {_name(swapped.booted)}")

    _reboot(lab, provisioner, lab_host, may_reboot, services, "into the rollback")
    back = _status(atomic, lab_host, "after the reboot into the rollback")
    assert back.booted is not None and back.booted.checksum == old.checksum, (
        f"{name}: after rollback and a reboot expected the old commit {old.checksum} booted; "
        f"booted is {_name(back.booted)} (the upgrade was {new.checksum})")
