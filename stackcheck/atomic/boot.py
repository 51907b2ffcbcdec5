"""Rebooting an Atomic host: who may, how it is done, and how "it is back" is decided.

A reboot goes through the provisioner (``provisioner.reboot``: over SSH on real hosts, a
simulated one where the provisioner's ``simulated_reboot`` says so); it counts as done only
when the host answers over SSH with a new ``/proc/sys/kernel/random/boot_id``. The services
that were active before must be active again afterwards (bounded waits).
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass

from stackcheck.lab import Host, Lab
from stackcheck.provisioner import Provisioner, ProvisionerError, provisioner_class
from stackcheck.ssh import host_connection, reconnect, run_checked
from stackcheck.waits import NotYet, WaitTimeout, wait_for

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
REBOOT_TIMEOUT = 600.0  # s: a real host may take minutes
SERVICES_TIMEOUT = 180.0  # s: services active again after a reboot
NODE_READY_TIMEOUT = 180.0  # s: a Kubernetes node Ready again after a reboot
ETCD_MEMBER_TIMEOUT = 60.0  # s: an etcd member serving again after its host's reboot
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")



@dataclass(frozen=True)
class RebootPolicy:
    """Whether the suite may reboot hosts of this lab, and why (shown in reports and skips)."""

    allowed: bool
    reason: str


def simulated_reboot(lab: Lab) -> str | None:
    """How the lab's provisioner simulates a reboot (None: a real one, or not registered)."""
    try:
        return provisioner_class(lab.provisioner).simulated_reboot
    except (ProvisionerError, ImportError):
        return None


def reboot_policy(lab: Lab, allow_reboot: bool) -> RebootPolicy:
    simulated = simulated_reboot(lab)
    if simulated:
        return RebootPolicy(True, simulated)
    if allow_reboot:
        return RebootPolicy(True, "--allow-reboot: hosts are rebooted over SSH, one at a time")
    return RebootPolicy(False, "rebooting real hosts needs --allow-reboot")


@dataclass(frozen=True)
class Reboot:
    host: str
    before: str
    after: str
    seconds: float


def boot_id(lab: Lab, host: Host, fresh: bool = False) -> str:
    """The host's boot id, read over SSH (``fresh``: on a new connection)."""
    conn = reconnect(lab, host) if fresh else host_connection(lab, host)
    # plain cat: host.file() runs testinfra's OS detection first on a fresh connection
    return run_checked(conn, host.name, f"cat {BOOT_ID_PATH}").strip()


def reboot(lab: Lab, provisioner: Provisioner, host: Host,
           timeout: float = REBOOT_TIMEOUT) -> Reboot:
    """Reboot ``host`` and wait (bounded) until it answers with a new boot id."""
    before = boot_id(lab, host)
    started = time.monotonic()
    provisioner.reboot(lab, host, timeout=timeout)

    def new_boot_id() -> str | NotYet:
        try:
            value = boot_id(lab, host, fresh=True)
        except Exception as exc:  # noqa: BLE001 - the host is down while it reboots
            return NotYet(f"no SSH ({type(exc).__name__}: {exc})"[:200])
        if _UUID.fullmatch(value) and value != before:
            return value
        return NotYet(f"boot id still {before}" if value == before else f"boot id {value!r}")

    after = wait_for(new_boot_id, timeout=max(10.0, timeout - (time.monotonic() - started)),
                     interval=1, what=f"{host.name} to answer with a new boot id")
    return Reboot(host.name, before, after, time.monotonic() - started)


def active_services(lab: Lab, provisioner: Provisioner, host: Host) -> list[str]:
    """The host's services (from the inventory's service_control units) that are active now
    (asked in one go: ``Provisioner.inactive``)."""
    units = list(lab.control_for(host).units)
    inactive = provisioner.inactive(lab, host, units)
    return [s for s in units if s not in inactive]


def wait_services(lab: Lab, provisioner: Provisioner, host: Host, services: list[str],
                  timeout: float = SERVICES_TIMEOUT) -> list[str]:
    """Wait (bounded) until every one of ``services`` is active; return those still inactive
    at the end. One remote command polls on the host (``Provisioner.inactive``)."""
    return provisioner.inactive(lab, host, services, timeout=timeout)


def wait_etcd_member(lab: Lab, host: Host, timeout: float = ETCD_MEMBER_TIMEOUT) -> str | None:
    """After a reboot: wait (bounded) until ``host``'s etcd member serves again: it answers,
    names a leader, and a linearizable read through it works (so it has caught up).

    Its process running is not enough: a rolling wave then stopped the next member while
    this one was still rejoining, and the cluster lost quorum for a moment (seen on a
    loaded 5-host lab). None when it serves (or the host is no member), else what it said.
    """
    if lab.etcd is None or not host.has_role("etcd"):
        return None
    from stackcheck.etcd.cluster import health, members

    mine = [m for m in members(lab) if m.host.name == host.name]
    if not mine:
        return None
    seen = ["not asked yet"]

    def serves() -> bool:
        seen[0] = health(mine)[host.name]
        return seen[0].startswith("ok ")

    with contextlib.suppress(WaitTimeout):
        wait_for(serves, timeout=timeout, interval=0.5, retry_errors=False,
                 what=f"{host.name}'s etcd member to serve again", describe=lambda: seen[0])
    return None if seen[0].startswith("ok ") else seen[0]


def node_state(lab: Lab, host: Host, since: float | None = None) -> str:
    """``Ready``, or what the API says about ``host``'s Node (its Ready condition).

    ``since`` (epoch s, e.g. when a reboot began): a Ready condition counts only if the
    kubelet posted it since then; before, the API still shows what the old kubelet said, and
    the new one first reports NotReady ("PLEG is not healthy") for a few seconds."""
    from stackcheck.kubernetes import connect

    assert lab.kubernetes is not None
    try:
        node = connect(str(lab.kubernetes.kubeconfig)).core.read_node(host.name)
    except Exception as exc:  # noqa: BLE001 - the API may be down while its host reboots
        return f"the API does not answer ({type(exc).__name__})"
    ready = next((c for c in node.status.conditions or [] if c.type == "Ready"), None)
    if ready is None:
        return "no Ready condition yet"
    if ready.status != "True":
        return f"NotReady ({ready.reason}: {ready.message})"
    beat = ready.last_heartbeat_time
    if since is not None and beat is not None and beat.timestamp() < since - 1:
        return (f"Ready as posted at {beat:%H:%M:%S} UTC, before the reboot: no status from "
                "the restarted kubelet yet")
    return "Ready"


def wait_node_ready(lab: Lab, host: Host, timeout: float = NODE_READY_TIMEOUT,
                    since: float | None = None) -> str | None:
    """After a reboot: wait (bounded) until ``host``'s Kubernetes Node is Ready again
    (``since``: as posted by its kubelet since then, see :func:`node_state`).

    None when it is (or the host is no node of the lab's Kubernetes), else what was last seen.
    """
    if lab.kubernetes is None or not host.has_role("node"):
        return None
    seen = [""]

    def ready() -> bool:
        seen[0] = node_state(lab, host, since)
        return seen[0] == "Ready"

    with contextlib.suppress(WaitTimeout):
        wait_for(ready, timeout=timeout, interval=2, retry_errors=False,
                 what=f"Node {host.name} to be Ready", describe=lambda: seen[0])
    return None if seen[0] == "Ready" else seen[0]
