"""etcd under faults: quorum is kept and lost exactly as Raft promises, no acknowledged write lost.

The checks are ``disruptive``: each has the lab alone, starts from a healthy cluster (or
fails at once, saying per member what is wrong) and leaves one behind. During each scenario
— the fault and the recovery after it — concurrent clients through every member write,
read linearizably and compare-and-set a few shared keys. At the scenario's end its history
is validated (linearizable per key, no acknowledged write lost, each member writable again
within a bound) and attached with a timeline picture. No check depends on another.

Bounds are generous (several labs may share a loaded 2-core machine): a healthy cluster
meets each in a small fraction of it, a broken one never does.
"""

from __future__ import annotations

import time

import allure
import pytest

from stackcheck.etcd.cluster import (
    Member,
    health,
    leader,
    membership,
    summary_text,
    wait_healthy,
)
from stackcheck.etcd.linearizability import Op
from stackcheck.etcd.traffic_checks import member_of
from stackcheck.etcd.workload import Window
from stackcheck.faults import Faults
from stackcheck.lab import Lab
from stackcheck.waits import wait_for
from stackcheck_fixtures.interrupt import interrupted
from stackcheck_reports import evidence

from .scenario import Scenario, Stops, require_healthy, since, traffic

ELECTION_TIMEOUT = 30.0  # s: a new leader after the old one stopped (seen: 0.5-2 s)
HEAL_TIMEOUT = 60.0  # s: every member healthy after restarts (seen: < 1 s)
WRITE_WITHIN = 20.0  # s: the traffic shows an acknowledged write through a member (seen: < 1 s)
#: s: without quorum etcd itself must fail a write or linearizable read within this
#: (etcd 3.4: 5 s + 2 election timeouts = 7 s); the traffic's clients wait longer
MAJORITY_LOSS_BOUND = 20.0
#: s: the traffic runs at least this long in each fault, so the history spans it
FAULT_HOLD = 2.0

pytestmark = [pytest.mark.disruptive, pytest.mark.claims("etcd-layer"),
              allure.feature("quorum under faults")]

#: what each scenario stops, counted on the member list (the guard's arithmetic)
STOPS = {
    "test_leader_loss_elects_new_leader": Stops("the leader", lambda listed: 1),
    "test_minority_loss_keeps_writes_and_reads": Stops("a minority",
                                                       lambda listed: listed.tolerance),
    "test_majority_loss_blocks_writes_within_bound": Stops("a majority",
                                                           lambda listed: listed.quorum),
}


@pytest.fixture(autouse=True)
def healthy_before_and_after(request: pytest.FixtureRequest, cluster: list[Member],
                             faults: Faults):
    """Each scenario starts from a healthy cluster (or fails at once) and leaves one behind
    (after Ctrl-C, the ``faults`` fixture restores and the run ends without waiting)."""
    require_healthy(cluster, stops=STOPS.get(request.function.__name__))
    yield
    if interrupted(request.session):
        return
    faults.heal()
    wait_healthy(cluster, HEAL_TIMEOUT, "a healthy cluster after the scenario")


def others(cluster: list[Member], excluded: list[Member]) -> list[Member]:
    return [m for m in cluster if m not in excluded]


def names(members: list[Member]) -> str:
    return ", ".join(m.host.name for m in members)


def agreed_leader(cluster: list[Member]) -> tuple[Member, dict]:
    seen = ["not yet"]

    def agreed() -> tuple[Member, dict]:
        try:
            return leader(cluster)
        except AssertionError as exc:
            seen[0] = str(exc)
            raise

    return wait_for(agreed, timeout=ELECTION_TIMEOUT, what="an agreed leader",
                    describe=lambda: seen[0])


def writes(ops: list[Op]) -> list[Op]:
    """Acknowledged writes and swapping CAS."""
    return [op for op in ops if op.outcome == "ok" and (op.kind == "write" or op.swapped)]


def written_through(members: list[Member], after: float = 0.0):
    """A condition on the traffic: an acknowledged write through each of ``members`` that
    was called after ``after``."""
    wanted = {m.host.name for m in members}
    return lambda ops: wanted <= {member_of(op.client) for op in writes(since(ops, after))}


def recover(scenario: Scenario, cluster: list[Member], faults: Faults, window: Window) -> None:
    """Restart what the fault stopped, wait for health, then for writes through everyone."""
    time.sleep(max(0.0, window.start + FAULT_HOLD - time.monotonic()))
    with evidence.step("restart the stopped members and wait for a healthy cluster"):
        faults.heal()
        scenario.traffic.healed(window)
        wait_healthy(cluster, HEAL_TIMEOUT, "a healthy cluster after the restart")
    healed = time.monotonic()
    scenario.wait_ops(f"acknowledged writes through every member ({names(cluster)}) after "
                      f"recovery", WRITE_WITHIN, written_through(cluster, healed))


@allure.id("etcd-leader-loss-elects")
def test_leader_loss_elects_new_leader(
    lab: Lab, cluster: list[Member], faults: Faults, run_id: str
) -> None:
    listed = membership(cluster)
    if listed.tolerance < 1:
        pytest.skip(f"{listed.size} member(s) tolerate no failure: stopping the leader "
                    "would lose quorum")
    with traffic(lab, cluster, run_id, "leader loss") as scenario:
        scenario.wait_ops("acknowledged writes through every member before the fault",
                          WRITE_WITHIN, written_through(cluster))
        old, old_status = agreed_leader(cluster)
        survivors = others(cluster, [old])
        window = scenario.traffic.fault(f"etcd stopped on the leader {old.host.name}",
                                        down=[old.host.name])
        with evidence.step(f"stop etcd on the leader {old.host.name}"):
            asked = time.monotonic()
            faults.stop(old.host, "etcd")
            gone = time.monotonic()
        with evidence.step("wait for a new leader"):
            _, new_status = wait_for(
                lambda: leader(survivors), timeout=ELECTION_TIMEOUT,
                what=f"a new leader agreed by {names(survivors)}",
                describe=lambda: summary_text(health(survivors)),
            )
            elapsed = time.monotonic() - gone
        # from the old leader's process gone until the survivors agree on a new leader (etcd
        # hands leadership over on SIGTERM, so often ~0); stopping it is not etcd's time
        evidence.measure("etcd leader failover", elapsed)
        evidence.attach_text("leader stop", f"stopping {old.host.name} took {gone - asked:.2f}s")
        assert int(new_status["raftTerm"]) > int(old_status["raftTerm"]), (
            f"expected the raft term to rise after failover; was {old_status['raftTerm']}, "
            f"now {new_status['raftTerm']}"
        )
        scenario.wait_ops(f"acknowledged writes through {names(survivors)} after failover",
                          WRITE_WITHIN, written_through(survivors, gone))
        recover(scenario, cluster, faults, window)
    scenario.assert_valid()


@allure.id("etcd-minority-loss-keeps-quorum")
def test_minority_loss_keeps_writes_and_reads(
    lab: Lab, cluster: list[Member], faults: Faults, run_id: str
) -> None:
    listed = membership(cluster)
    tolerance = listed.tolerance
    if tolerance < 1:
        pytest.skip(f"{listed.size} member(s) tolerate no failure")
    with traffic(lab, cluster, run_id, "minority loss") as scenario:
        current, _ = agreed_leader(cluster)
        stopped = others(cluster, [current])[:tolerance]
        alive = others(cluster, stopped)
        window = scenario.traffic.fault(f"etcd stopped on {names(stopped)} (a minority)",
                                        down=[m.host.name for m in stopped])
        with evidence.step(f"stop etcd on {names(stopped)}"):
            for member in stopped:
                faults.stop(member.host, "etcd")
        down = time.monotonic()
        scenario.wait_ops(
            f"with {listed.after(len(stopped))} (tolerance {tolerance}), "
            f"acknowledged writes through {names(alive)}", WRITE_WITHIN,
            written_through(alive, down))
        scenario.wait_ops(f"linearizable reads through {names(alive)} with the minority down",
                          WRITE_WITHIN, lambda ops: {m.host.name for m in alive} <= {
                              member_of(op.client) for op in since(ops, down)
                              if op.kind == "read" and op.outcome == "ok"})
        recover(scenario, cluster, faults, window)
    scenario.assert_valid()


@allure.id("etcd-majority-loss-blocks-writes")
def test_majority_loss_blocks_writes_within_bound(
    lab: Lab, cluster: list[Member], faults: Faults, run_id: str
) -> None:
    listed = membership(cluster)
    if listed.size < 2:
        pytest.skip("a single-member cluster has no majority to lose but itself")
    majority = listed.quorum
    keep = cluster[-1]
    stopped = others(cluster, [keep])[:majority]
    with traffic(lab, cluster, run_id, "majority loss") as scenario:
        window = scenario.traffic.fault(f"etcd stopped on {names(stopped)} (a majority)",
                                        down=[m.host.name for m in cluster])
        with evidence.step(f"stop etcd on {names(stopped)} (a majority)"):
            for member in stopped:
                faults.stop(member.host, "etcd")
        down = time.monotonic()
        with evidence.step(f"a write and a linearizable read through {keep.host.name}"):
            probes = scenario.traffic.probe(keep.host.name)
        t0 = scenario.record.started
        assert len(probes) == 2 and all(op.outcome != "pending" for op in probes), (
            f"expected etcd to answer a write and a read through {keep.label} within "
            f"{MAJORITY_LOSS_BOUND:g}s; got {[op.describe(t0) for op in probes]}"
        )
        for op in probes:
            took = (op.ended or op.ret) - op.call
            assert op.outcome != "ok", (
                f"expected no {op.kind} through {keep.label} to succeed without quorum; "
                f"{op.describe(t0)}"
            )
            assert took <= MAJORITY_LOSS_BOUND, (
                f"expected etcd to fail a {op.kind} without quorum within "
                f"{MAJORITY_LOSS_BOUND:g}s; {keep.label} took {took:.1f}s ({op.error})"
            )
        answered = [op for op in since(scenario.ops(), down)
                    if member_of(op.client) == keep.host.name and op.outcome == "ok"]
        assert not answered, (
            f"expected no write or linearizable read through {keep.label} to succeed "
            f"without quorum; {len(answered)} did, first: {answered[0].describe(t0)}"
        )
        try:
            keep.client.get("stackcheck/health", serializable=True)
            serializable = "answered"
        except Exception as exc:  # noqa: BLE001 - allowed either way
            serializable = f"failed ({type(exc).__name__})"
        evidence.attach_text(
            "majority loss timings",
            "; ".join(f"{op.kind} failed after {(op.ended or op.ret) - op.call:.2f}s "
                      f"({op.error})" for op in probes) + f"; serializable read {serializable}",
        )
        recover(scenario, cluster, faults, window)
    scenario.assert_valid()
