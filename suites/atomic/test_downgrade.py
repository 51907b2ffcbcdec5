"""Negative: the upgrade path refuses a commit chronologically older than the booted one.

rpm-ostree: ``rpm-ostree deploy --disallow-downgrade <older>``; plain ostree:
``ostree admin upgrade --override-commit=<older>`` (refused unless ``--allow-downgrade``).
The older commit is the booted commit's parent; a host booted from a container image skips
(its commit is a merge commit with no parent). Disruptive because an accepted downgrade
changes the default deployment (``start_status`` puts it back). Runs in rolling waves like
the upgrade cycle (``stackcheck_fixtures.claims``): the hosts of a wave at once;
``--serial-disruptive``: one host at a time.
"""

from __future__ import annotations

import allure
import pytest

from stackcheck.atomic.backends import DOWNGRADE_REFUSED, Backend
from stackcheck.atomic.boot import RebootPolicy
from stackcheck.atomic.model import Status
from stackcheck.lab import Host, Lab
from stackcheck.provisioner import Provisioner
from stackcheck_reports.evidence import attach_table, attach_text, step

pytestmark = [pytest.mark.disruptive, pytest.mark.role("atomic"), pytest.mark.claims("host"),
              allure.feature("upgrade and rollback")]


@allure.id("atomic-downgrade-refused")
@pytest.mark.rolling
def test_upgrade_to_an_older_commit_is_refused(lab_host: Host, rolling, atomic_cycle) -> None:
    rolling.run(lab_host, atomic_cycle(upgrade_to_older_is_refused, reboots=False))


def upgrade_to_older_is_refused(
    lab: Lab, lab_host: Host, provisioner: Provisioner, atomic: Backend,
    reboot_rules: RebootPolicy, start_status: Status,
) -> None:
    name = lab_host.name
    booted = start_status.booted
    assert booted is not None
    if booted.image:
        pytest.skip(f"{name}: booted from the container image {booted.image}"
                    f"{f' ({booted.digest})' if booted.digest else ''}: its ostree commit is a "
                    "merge commit made on the host, with no parent; an older image is chosen "
                    "by digest (rpm-ostree rebase / bootc switch), which the suite does not "
                    "know")
    older = atomic.parent_of(booted.checksum)
    if older is None:
        pytest.skip(f"{name}: the booted commit {booted.checksum} has no parent: nothing older "
                    "to try")
    with step(f"{name}: upgrade to {older}, the parent of the booted {booted.checksum}"):
        result = atomic.upgrade_to_older(older)
        attach_text(f"{name}: {result.command} (exit {result.rc})", result.output)
    after = atomic.status()
    attach_table(f"{name}: deployments after the attempt", after.summary())
    default = after.default.checksum if after.default else "nothing"
    assert result.rc != 0, (
        f"{name}: the upgrade path accepted the older commit {older} (parent of the booted "
        f"{booted.checksum}); expected it refused as {DOWNGRADE_REFUSED!r}; the default is now "
        f"{default}")
    assert DOWNGRADE_REFUSED in result.output, (
        f"{name}: the upgrade to the older commit {older} failed, but not as a downgrade "
        f"refusal (expected {DOWNGRADE_REFUSED!r}): {result.output[-400:]}")
    start_default = start_status.default.checksum if start_status.default else "nothing"
    assert default == start_default, (
        f"{name}: a refused downgrade changed the default deployment from {start_default} to "
        f"{default}")
