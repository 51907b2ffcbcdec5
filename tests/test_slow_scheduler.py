"""The scheduler's verdict on a loaded machine: down only by its own word (its unit, its
leader lease), never because a probe pod's decision came late; the broken case still fast.

No lab: the API objects are constructed in the shape Kubernetes v1.20.2 serves them
(``coordination.k8s.io/v1`` Lease, ``v1`` Pod), and the unit states are the local lab's
``unitstate.py`` output as recorded on a lab of this repository (see :data:`INACTIVE_SHOW`).
The old judgement ("no decision within 6 s" = down) fails every ``not down`` assertion here.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from stackcheck import preflight, services
from stackcheck.kubernetes import preflight as kube_preflight
from stackcheck.kubernetes.health import lease_of
from stackcheck.kubernetes.preflight import SchedulerSeen, judge_scheduler, probe_scheduler
from stackcheck.lab import Lab
from stackcheck.services import parse_show

#: the local lab's `status kube-scheduler` (provisioners/local/unitstate.py) on h1 of lab
#: hw4a (Kubernetes v1.20.2), after `python -m stackcheck_provisioners.local ... stop
#: kube-scheduler`, 2026-12-03
INACTIVE_SHOW = """Id=kube-scheduler
LoadState=loaded
ActiveState=inactive
SubState=dead
StateChangeTimestamp=Thu 2026-12-03 16:03:38 UTC
"""
#: the same while it runs
ACTIVE_SHOW = """Id=kube-scheduler
LoadState=loaded
ActiveState=active
SubState=running
StateChangeTimestamp=Thu 2026-12-03 16:02:43 UTC
"""
NOW = dt.datetime(2026, 12, 3, 16, 45, 0, tzinfo=dt.UTC)


def _lease(renewed_ago: float | None, duration: int = 15) -> dict:
    """A kube-system/kube-scheduler Lease as v1.20.2's leader election writes it."""
    spec: dict = {"holderIdentity": "h1_5d1c7a55-0f7e-4a3c-9d0b-9b8f6f2f1e11",
                  "leaseDurationSeconds": duration, "leaseTransitions": 0,
                  "acquireTime": "2026-12-03T16:31:57.000000Z"}
    if renewed_ago is not None:
        when = NOW - dt.timedelta(seconds=renewed_ago)
        spec["renewTime"] = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "kube-scheduler", "namespace": "kube-system"}, "spec": spec}


def _unit(show: str):
    return parse_show("kube-scheduler", "kube-scheduler", show)


def test_a_late_decision_from_a_live_scheduler_is_slow_and_blocks_nothing() -> None:
    lease = lease_of(_lease(2.0), NOW)
    seen = SchedulerSeen(decided_after=9.4, waited=9.4, lease=lease,
                         units={"h1": _unit(ACTIVE_SHOW)})
    health = judge_scheduler(seen, ["h1"])
    assert health.status == preflight.DEGRADED and health.ok, health
    assert health.summary.startswith(
        "slow: a probe pod got a scheduling decision in 9.4 s (expected within 6 s); its "
        "leader lease kube-system/kube-scheduler was renewed 2 s ago by h1_5d1c"), health
    assert "kube-scheduler active since 2026-12-03 16:02:43 UTC" in health.summary


def test_no_decision_yet_from_a_scheduler_whose_unit_runs_is_not_down() -> None:
    """The case seen at load 20+: no decision within the wait, the scheduler running."""
    seen = SchedulerSeen(decided_after=None, waited=10.5, units={"h1": _unit(ACTIVE_SHOW)})
    health = judge_scheduler(seen, ["h1"])
    assert health.ok and not health.down, health
    assert health.summary == (
        "slow: no scheduling decision on a probe pod in 10 s, but it runs (h1: kube-scheduler "
        "active since 2026-12-03 16:02:43 UTC); checks that schedule pods may wait")


def test_no_decision_and_a_renewed_lease_is_not_down() -> None:
    seen = SchedulerSeen(decided_after=None, waited=10.5, lease=lease_of(_lease(3.0), NOW),
                         units={"h1": None})
    health = judge_scheduler(seen, ["h1"])
    assert health.ok, health
    assert "its leader lease kube-system/kube-scheduler was renewed 3 s ago" in health.summary


def test_a_stopped_unit_is_down_naming_the_master_s_word() -> None:
    seen = SchedulerSeen(decided_after=None, waited=1.8, units={"h1": _unit(INACTIVE_SHOW)})
    health = judge_scheduler(seen, ["h1"])
    assert health.status == preflight.DOWN and health.down == ["h1"], health
    assert health.summary == (
        "no pod gets a node: the scheduler is not running (h1: kube-scheduler inactive since "
        "2026-12-03 16:03:38 UTC; no scheduling decision on a probe pod in 2 s)")


def test_a_stale_lease_is_down_even_while_its_unit_runs() -> None:
    """Active but not renewing for longer than its lease: hung, by its own word."""
    seen = SchedulerSeen(decided_after=None, waited=10.2, lease=lease_of(_lease(41.0), NOW),
                         units={"h1": _unit(ACTIVE_SHOW)})
    health = judge_scheduler(seen, ["h1"])
    assert health.status == preflight.DOWN, health
    assert health.summary.startswith(
        "no pod gets a node: the scheduler is not running (its leader lease "
        "kube-system/kube-scheduler was renewed 41 s ago by h1_5d1c7a55-0f7e-4a3c-9d0b-"
        "9b8f6f2f1e11 (expected within 20 s); no scheduling decision on a probe pod in 10 s")


def test_a_decision_outweighs_a_stale_lease() -> None:
    """A scheduler that decides works (a stale lease then is a clock's word, not its own)."""
    seen = SchedulerSeen(decided_after=0.6, waited=0.6, lease=lease_of(_lease(60.0), NOW))
    assert judge_scheduler(seen, ["h1"]).status == preflight.OK


def test_a_prompt_decision_is_ok() -> None:
    health = judge_scheduler(SchedulerSeen(decided_after=0.4, waited=0.4), ["h1"])
    assert health.status == preflight.OK
    assert health.summary == "a probe pod got a scheduling decision in 0.4 s"


def test_no_word_at_all_is_said_and_blocks_nothing() -> None:
    """No master in the inventory, no leader lease: a late decision is no root cause."""
    health = judge_scheduler(SchedulerSeen(decided_after=None, waited=10.0), [])
    assert health.ok and health.summary.startswith("not judged: no scheduling decision"), health


def test_absent_or_masked_units_are_no_word_on_a_static_pod_scheduler() -> None:
    absent = parse_show("kube-scheduler", "kube-scheduler.service",
                        "Id=kube-scheduler.service\nLoadState=not-found\nActiveState=inactive\n")
    seen = SchedulerSeen(decided_after=None, waited=10.0, units={"h1": absent})
    assert judge_scheduler(seen, ["h1"]).ok


def test_lease_age_and_staleness() -> None:
    assert not lease_of(_lease(19.0), NOW).stale  # 15 s + 5 s slack
    assert lease_of(_lease(21.0), NOW).stale
    never = lease_of(_lease(None), NOW)
    assert never.stale and never.describe() == (
        "its leader lease kube-system/kube-scheduler was never renewed")
    assert lease_of(_lease(2.0, duration=40), NOW).duration == 40


# --- the probe: fast when the unit says down, patient when the scheduler runs ---------------


class _Api:
    """The REST calls the probe makes, answered like v1.20.2's API: the probe pod gets its
    PodScheduled=False (Unschedulable) condition after ``decide_after`` s (never if None)."""

    def __init__(self, decide_after: float | None, lease: dict | None = None) -> None:
        self.decide_after, self.lease, self.made = decide_after, lease, 0.0
        self.deleted = False

    def call(self, method: str, path: str, body: dict | None = None, query=None) -> dict:
        if "/leases/" in path:
            if self.lease is None:
                from stackcheck.kubernetes.health import ApiError
                raise ApiError(404, '{"kind":"Status","reason":"NotFound"}')
            return self.lease
        if method == "POST":
            self.made = time.monotonic()
            return body or {}
        if method == "DELETE":
            self.deleted = True
            return {}
        status: dict = {"phase": "Pending"}
        if self.decide_after is not None and time.monotonic() - self.made >= self.decide_after:
            status["conditions"] = [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 node(s) didn't match node selector."}]
        return {"spec": {}, "status": status}


def _master_lab(ssh_files: Path) -> Lab:
    return Lab.model_validate({
        "name": "t", "ssh": {"known_hosts": str(ssh_files / "known_hosts")},
        "hosts": [{"name": "h1", "address": "192.0.2.11", "roles": ["master"]}],
    })


def _unit_state(show: str, delay: float = 0.3):
    def read(lab, host, service, timeout=8):
        time.sleep(delay)  # an SSH round trip
        return _unit(show)
    return read


def test_a_stopped_scheduler_is_named_within_seconds(ssh_files: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "unit_state", _unit_state(INACTIVE_SHOW))
    api = _Api(decide_after=None)
    started = time.monotonic()
    seen = probe_scheduler(_master_lab(ssh_files), api, "run", time.monotonic() + 10.5)
    took = time.monotonic() - started
    assert took < 3.0, took  # the unit's word ends the wait: no waiting out the bound
    assert api.deleted and seen.decided_after is None and seen.lease is None
    assert judge_scheduler(seen, ["h1"]).status == preflight.DOWN


def test_a_slow_scheduler_gets_past_the_prompt_wait(ssh_files: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A decision 7 s late on a running scheduler is seen (the old probe gave up at 6 s)."""
    monkeypatch.setattr(services, "unit_state", _unit_state(ACTIVE_SHOW))
    monkeypatch.setattr(kube_preflight, "SCHEDULER_PROMPT", 1.0)
    seen = probe_scheduler(_master_lab(ssh_files), _Api(decide_after=2.0), "run",
                           time.monotonic() + 6.0)
    assert seen.decided_after is not None and 2.0 <= seen.decided_after < 4.0, seen
    health = judge_scheduler(seen, ["h1"])
    assert health.status == preflight.DEGRADED and health.summary.startswith("slow: "), health


def test_the_probe_stays_within_the_preflight_budget(ssh_files: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "unit_state", _unit_state(ACTIVE_SHOW))
    monkeypatch.setattr(kube_preflight, "SCHEDULER_PROMPT", 1.0)
    started = time.monotonic()
    seen = probe_scheduler(_master_lab(ssh_files), _Api(decide_after=None), "run",
                           time.monotonic() + 2.0)
    assert 1.9 <= time.monotonic() - started < 3.5
    assert judge_scheduler(seen, ["h1"]).ok

