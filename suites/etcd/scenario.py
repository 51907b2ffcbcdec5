"""A disruptive scenario with traffic: record it, validate it at its end, attach it."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from stackcheck.etcd.cluster import (
    Member,
    Membership,
    NoAnswer,
    health,
    is_healthy,
    membership,
    problem,
    settles,
    summary_text,
)
from stackcheck.etcd.linearizability import Op
from stackcheck.etcd.timeline import svg
from stackcheck.etcd.traffic_checks import Findings, validate
from stackcheck.etcd.workload import Record, Traffic, logged
from stackcheck.lab import Lab
from stackcheck.waits import WaitTimeout, wait_for
from stackcheck_reports import evidence

#: s: a disruptive check waits at most this for a healthy cluster before it starts
SETTLE_BEFORE = 8.0
#: concurrent clients, round robin over the members
CLIENTS = 6
#: s: a member outside its fault window accepts a write within this (seen: < 3 s after an
#: election; a write caught in flight at the fault waits etcd's 5 s request timeout)
UNAVAILABLE_BOUND = 15.0
#: s: a traffic client waits this long for an answer (longer than etcd's own 5 s request
#: timeout, so etcd, not the client, decides a write failed)
CLIENT_TIMEOUT = 30.0
#: s: reading the write log through a member after recovery
LOG_READ_WITHIN = 20.0


def read_logs(cluster: list[Member], record: Record) -> dict[str, set[str] | str]:
    """Per member, every logged value of every key (or why it could not be read)."""
    out: dict[str, set[str] | str] = {}
    for m in cluster:
        last = ["not yet"]

        def read(member: Member = m, seen: list[str] = last) -> tuple[set[str]] | None:
            try:
                return (set().union(*(logged(member.client, key) for key in record.keys)),)
            except Exception as exc:  # noqa: BLE001 - retried, then reported
                seen[0] = problem(exc)
                return None

        try:
            (out[m.host.name],) = wait_for(
                read, timeout=LOG_READ_WITHIN, what=f"the write log read through {m.host.name}",
                describe=lambda seen=last: seen[0])
        except WaitTimeout as exc:
            out[m.host.name] = str(exc)
    return out


@dataclass
class Scenario:
    """A scenario's traffic and, once it stopped, its validation."""

    name: str
    traffic: Traffic
    findings: Findings | None = None

    @property
    def record(self) -> Record:
        return self.traffic.record

    def ops(self) -> list[Op]:
        return list(self.record.history.ops)

    def wait_ops(self, what: str, timeout: float, condition: Callable[[list[Op]], bool]) -> None:
        """Wait until the recorded traffic shows ``condition(ops)``; the timeout says how
        many operations of each outcome it saw."""
        def describe() -> str:
            counts: dict[str, int] = {}
            for op in self.ops():
                counts[op.outcome] = counts.get(op.outcome, 0) + 1
            return f"{sum(counts.values())} operations so far, by outcome {counts}"

        wait_for(lambda: condition(self.ops()), timeout=timeout, interval=0.2, what=what,
                 describe=describe)

    def assert_valid(self) -> None:
        """Fail the scenario on any finding of its traffic's validation."""
        assert self.findings is not None, f"{self.name}: the traffic was not validated"
        assert not self.findings.problems, (
            f"{self.name}: the traffic ({len(self.record.history.ops)} operations by "
            f"{len(self.record.clients)} clients) shows: " + "; ".join(self.findings.problems))


def attach(scenario: Scenario) -> None:
    """The history (JSON), the timeline (SVG) and the verdicts, as the scenario's evidence."""
    findings, name = scenario.findings, scenario.name
    evidence.attach_json(f"{name} history", scenario.record.to_dict())
    culprit = findings.verdict.culprit if findings else None
    evidence.attach_svg(f"{name} timeline", svg(scenario.record, f"etcd: {name}", culprit))
    if findings:
        evidence.attach_json(f"{name} verdicts", findings.summary())


@contextmanager
def traffic(lab: Lab, cluster: list[Member], run_id: str, name: str) -> Iterator[Scenario]:
    """Traffic through every member for the ``with`` block; then the history is validated
    (the caller calls ``assert_valid``) and attached, whatever happened."""
    assert lab.etcd is not None
    prefix = f"stackcheck/{run_id}/traffic/{name.replace(' ', '-')}-{uuid.uuid4().hex[:6]}"
    load = Traffic(lab.etcd, {m.host.name: m.endpoint for m in cluster}, prefix,
                   clients=CLIENTS, timeout=CLIENT_TIMEOUT, seed=zlib.crc32(name.encode()))
    scenario = Scenario(name, load.start())
    try:
        yield scenario
    except KeyboardInterrupt:  # the run ends at once: no validation, no evidence
        load.stop(wait=False)
        raise
    except BaseException:
        finish(scenario, load.stop(), cluster)
        raise
    finish(scenario, load.stop(), cluster)


def finish(scenario: Scenario, record: Record, cluster: list[Member]) -> None:
    """Validate the stopped traffic and attach it, whatever the validation found."""
    try:
        scenario.findings = validate(record, read_logs(cluster, record), UNAVAILABLE_BOUND)
        evidence.measure(f"etcd {scenario.name} history check", scenario.findings.check_seconds)
    finally:
        attach(scenario)


def since(ops: list[Op], t: float) -> list[Op]:
    """The operations called at or after ``t`` (monotonic s)."""
    return [op for op in ops if op.call >= t]


#: endpoints of clusters a disruptive check of this process found unhealthy
_FOUND_UNHEALTHY: set[tuple[str, ...]] = set()


@dataclass(frozen=True)
class Stops:
    """What a scenario stops, in words and as a count of the member list."""

    what: str  # "the leader"
    count: Callable[[Membership], int]

    def after(self, listed: Membership, down: int) -> str:
        return (f"stopping {self.what} ({self.count(listed)}) would leave "
                f"{listed.after(down + self.count(listed))}")


def not_ready(cluster: list[Member]) -> tuple[Membership | None, list[str]]:
    """The member list, and each listed member that is not one of ``cluster``'s started
    members (unstarted, or at an address the inventory does not know)."""
    try:
        listed = membership(cluster)
    except NoAnswer:
        return None, []
    odd = {m.id: m for m in [*listed.unstarted, *listed.outside(cluster)]}
    return listed, [f"{'extra member' if m in listed.outside(cluster) else 'member'} "
                    f"{m.describe()}" for m in odd.values()]


def require_healthy(cluster: list[Member], settle: float = SETTLE_BEFORE,
                    stops: Stops | None = None) -> None:
    """Fail at once unless the cluster is ready for a fault, saying why and what the fault
    would do: a member list with an unstarted or unknown member fails without waiting; an
    unhealthy member after a short settle (once a check found the cluster unhealthy, the next
    ones do not settle again while it still is)."""
    listed, odd = not_ready(cluster)
    if listed is not None and odd:
        consequence = f"; {stops.after(listed, len(odd))}" if stops else ""
        pytest.fail(f"etcd is not ready for the scenario, so the fault was not injected: the "
                    f"member list has {listed.size} members and {len(odd)} of them "
                    f"{'is' if len(odd) == 1 else 'are'} down: {'; '.join(odd)}{consequence}",
                    pytrace=False)
    seen: dict[str, str] = {}
    which = tuple(m.endpoint for m in cluster)

    def ok() -> bool:
        seen.clear()
        seen.update(health(cluster))
        return is_healthy(seen)

    if which in _FOUND_UNHEALTHY:
        settle = 0.0
    if settles(ok, settle, "a healthy cluster before the scenario",
               describe=lambda: summary_text(seen)):
        _FOUND_UNHEALTHY.discard(which)
        return
    _FOUND_UNHEALTHY.add(which)
    waited = f"waited {settle:g}s" if settle else "still, as before an earlier scenario"
    down = sum(not state.startswith("ok ") for state in seen.values())
    consequence = f"; {stops.after(listed, down)}" if stops and listed else ""
    pytest.fail(f"etcd is not healthy before the scenario ({waited}), so the fault was not "
                f"injected: {summary_text(seen)}{consequence}", pytrace=False)
