"""Atomic hosts as they run: booted into a deployment, /usr read-only, one origin, one commit.

Non-disruptive: these checks only read (``ostree admin status`` / ``rpm-ostree status --json``
and the /usr mount over SSH).
"""

from __future__ import annotations

from collections.abc import Callable

import allure
import pytest

from reports.evidence import attach_table
from stackcheck.atomic.backends import Backend
from stackcheck.atomic.model import Status, majority
from stackcheck.lab import Host
from suites.atomic.conftest import ExpectedRefspec

pytestmark = [allure.feature("deployments")]


@allure.id("atomic-booted-deployment")
@pytest.mark.role("atomic")
def test_host_is_booted_into_a_deployment(lab_host: Host, atomic: Backend) -> None:
    status = atomic.status()
    attach_table(f"{lab_host.name}: deployments ({atomic.describe()})", status.summary())
    assert status.deployments, (
        f"{lab_host.name}: expected ostree deployments; {atomic.describe()} lists none")
    ids = ", ".join(d.id for d in status.deployments)
    assert status.booted is not None, (
        f"{lab_host.name}: expected to be booted into an ostree deployment; none of "
        f"{ids} is marked booted")


@allure.id("atomic-usr-read-only")
@pytest.mark.role("atomic")
def test_usr_is_read_only(lab_host: Host, host) -> None:
    mount = host.run("findmnt -n -o TARGET,OPTIONS -T /usr").stdout.split()
    target, options = [*mount, "?", "(unknown)"][:2]
    writable = host.run("test -w /usr").rc == 0  # access(2): EROFS even for root
    assert "ro" in options.split(",") and not writable, (
        f"{lab_host.name}: expected /usr read-only; it is on {target} mounted {options}, "
        f"{'writable' if writable else 'not writable'}"
    )


@allure.id("atomic-origin-refspec")
@pytest.mark.role("atomic")
def test_booted_origin_is_the_configured_one(
    lab_host: Host, atomic: Backend, expected_refspec: ExpectedRefspec
) -> None:
    booted = atomic.booted()
    assert booted.origin == expected_refspec.value, (
        f"{lab_host.name}: the booted deployment {booted.checksum} follows "
        f"{booted.origin or '(no origin refspec)'}; expected {expected_refspec.value} "
        f"({expected_refspec.source})"
    )


@allure.id("atomic-same-commit")
def test_every_host_runs_the_same_commit(atomic_statuses: Callable[[], dict[str, Status]]) -> None:
    statuses = atomic_statuses()
    if not statuses:
        pytest.skip("the lab has no host with role 'atomic'")
    attach_table("booted commit per host", [
        {"host": name, "booted": s.booted.id if s.booted else "(none)",
         "version": (s.booted.version or "") if s.booted else "",
         "origin": (s.booted.origin or "") if s.booted else ""}
        for name, s in sorted(statuses.items())
    ])
    unbooted = sorted(name for name, s in statuses.items() if s.booted is None)
    assert not unbooted, f"expected every atomic host booted into a deployment; not: {unbooted}"
    booted = {name: s.booted.checksum for name, s in statuses.items() if s.booted}
    common, groups = majority(booted)
    if len(groups) == 1:
        return
    if common is None:
        listing = "; ".join(f"{', '.join(hosts)} booted {c}" for c, hosts in groups.items())
        pytest.fail(f"expected every atomic host on the same commit; no commit has a majority: "
                    f"{listing}", pytrace=False)
    odd = [f"{host} booted {checksum}" for checksum, hosts in groups.items()
           if checksum != common for host in hosts]
    pytest.fail(f"expected every atomic host on the same commit; odd ones out: {'; '.join(odd)}; "
                f"the majority ({', '.join(groups[common])}) booted {common}", pytrace=False)
