"""Atomic hosts as they run: booted into a deployment, /usr read-only, one origin, one commit,
and nothing different waiting for the next boot.

Non-disruptive: these checks only read (``ostree admin status`` / ``rpm-ostree status --json``
/ ``bootc status --json`` and the /usr mount over SSH). An origin is an ostree refspec or a
container image reference; "the same commit" is the image digest where there is one (an
image's ostree merge commit is made on each host), else the commit checksum.
"""

from __future__ import annotations

from collections.abc import Callable

import allure
import pytest

from stackcheck.atomic.backends import Backend
from stackcheck.atomic.model import Status, majority
from stackcheck.lab import Host
from stackcheck_reports.evidence import attach_table

from .conftest import ExpectedRefspec

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
    assert booted.follows() == expected_refspec.value, (
        f"{lab_host.name}: the booted deployment {booted.checksum} follows "
        f"{booted.follows()}; expected {expected_refspec.value} ({expected_refspec.source})"
    )


@allure.id("atomic-same-commit")
def test_every_host_runs_the_same_commit(atomic_statuses: Callable[[], dict[str, Status]]) -> None:
    statuses = atomic_statuses()
    if not statuses:
        pytest.skip("the lab has no host with role 'atomic'")
    attach_table("booted commit per host", [
        {"host": name, "booted": s.booted.id if s.booted else "(none)",
         "version": (s.booted.version or "") if s.booted else "",
         "origin": s.booted.follows() if s.booted else "",
         "origin kind": s.booted.origin_kind if s.booted else "",
         "digest": (s.booted.digest or "") if s.booted else "",
         "update driver": s.update_driver or ""}
        for name, s in sorted(statuses.items())
    ])
    unbooted = sorted(name for name, s in statuses.items() if s.booted is None)
    assert not unbooted, f"expected every atomic host booted into a deployment; not: {unbooted}"
    booted = {name: s.booted.identity for name, s in statuses.items() if s.booted}
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


def _next_boot_rows(statuses: dict[str, Status]) -> list[dict[str, str]]:
    rows = []
    for name, s in sorted(statuses.items()):
        nxt = s.pending
        rows.append({"host": name, "booted": s.booted.id if s.booted else "(none)",
                     "next boot": nxt.id if nxt else "(the booted one)",
                     "next version": (nxt.version or "") if nxt else "",
                     "next origin": nxt.follows() if nxt else "",
                     "state": s.role(nxt) if nxt else "",
                     "update driver": s.update_driver or ""})
    return rows


@allure.id("atomic-no-pending-deployment")
@pytest.mark.role("atomic")
def test_next_boot_is_the_booted_deployment(lab_host: Host, atomic: Backend) -> None:
    """What boots next is what runs now: no pending or staged deployment that differs."""
    status = atomic.status()
    attach_table(f"{lab_host.name}: deployments ({atomic.describe()})", status.summary())
    booted, pending = status.booted, status.pending
    if booted is None:
        pytest.skip(f"{lab_host.name}: not booted into a deployment "
                    "(atomic-booted-deployment says so)")
    if pending is None or pending.identity == booted.identity:
        return
    how = status.role(pending).replace("default, ", "")
    driver = f"; updates are driven by {status.update_driver}" if status.update_driver else ""
    pytest.fail(
        f"{lab_host.name}: the next boot runs {pending.describe()} ({how}, following "
        f"{pending.follows()}), not the booted {booted.describe()}: a reboot changes the "
        f"OS{driver}", pytrace=False)


@allure.id("atomic-next-boot-same-everywhere")
def test_every_host_boots_the_same_commit_next(
        atomic_statuses: Callable[[], dict[str, Status]]) -> None:
    """After a reboot every host runs the same commit (pending deployments included)."""
    statuses = atomic_statuses()
    if not statuses:
        pytest.skip("the lab has no host with role 'atomic'")
    attach_table("next boot per host", _next_boot_rows(statuses))
    following = {name: (s.pending or s.booted) for name, s in statuses.items()
                 if (s.pending or s.booted) is not None}
    common, groups = majority({name: d.identity for name, d in following.items()})
    if len(groups) <= 1:
        return
    if common is None:
        listing = "; ".join(f"{', '.join(hosts)} next boot {c}" for c, hosts in groups.items())
        pytest.fail(f"expected every atomic host to boot the same commit next; no commit has "
                    f"a majority: {listing}", pytrace=False)
    odd = [f"{host} next boots {following[host].describe()}"
           + (" (pending)" if statuses[host].pending else "")
           for ident, hosts in groups.items() if ident != common for host in hosts]
    pytest.fail(f"expected every atomic host to boot the same commit next; odd ones out: "
                f"{'; '.join(odd)}; the majority ({', '.join(groups[common])}) next boots "
                f"{common}", pytrace=False)
