"""etcd under faults: quorum is kept and lost exactly as Raft promises, no acknowledged write lost.

The checks are ``disruptive``: each has the lab alone, starts from a healthy cluster and
leaves one behind, so none depends on another. They record their operations on one register
in a workload per worker (with ``--dist loadgroup``, all of them on one worker), checked for
linearizability at the end.

Bounds are generous (several labs may share a loaded 2-core machine): a healthy cluster
meets each in a small fraction of it, a broken one never does. Writes that must succeed
are retried within ``WRITE_WITHIN`` (an election nobody caused may fail one); failed
attempts stay in the history with an unknown outcome.
"""

from __future__ import annotations

import time

import allure
import pytest

from reports import evidence
from stackcheck.faults import Faults
from stackcheck.lab import Lab
from stackcheck.waits import wait_for
from suites.etcd.cluster import (
    Member,
    Workload,
    assert_linearizable,
    healthy,
    leader,
    members,
    status_of,
)

ELECTION_TIMEOUT = 30.0  # s: a new leader after the old one stopped (seen: 0.5-2 s)
HEAL_TIMEOUT = 60.0  # s: every member healthy after restarts (seen: < 1 s)
WRITE_WITHIN = 20.0  # s: a write (or read) with quorum kept succeeds within this, retried
#: s: without quorum etcd itself must fail a write or linearizable read within this
#: (etcd 3.4: 5 s + 2 election timeouts = 7 s); the client waits longer, so a hang fails
MAJORITY_LOSS_BOUND = 20.0
CLIENT_TIMEOUT = MAJORITY_LOSS_BOUND + 10.0

pytestmark = [pytest.mark.disruptive, allure.feature("quorum under faults")]


@pytest.fixture(scope="module")
def cluster(lab: Lab, cluster: list[Member]) -> list[Member]:
    """The members, with clients that wait ``CLIENT_TIMEOUT``: etcd, not the client, gives up."""
    return members(lab, timeout=CLIENT_TIMEOUT)


@pytest.fixture(scope="module")
def workload(run_id: str) -> Workload:
    return Workload(f"stackcheck/{run_id}/register")


@pytest.fixture(autouse=True)
def healthy_before_and_after(cluster: list[Member], faults: Faults):
    """Each fault starts from a healthy cluster and leaves one behind, whatever happens."""
    wait_for(lambda: healthy(cluster), timeout=HEAL_TIMEOUT, what="a healthy cluster before")
    yield
    faults.heal()
    wait_for(lambda: healthy(cluster), timeout=HEAL_TIMEOUT, what="a healthy cluster after")


def others(cluster: list[Member], excluded: list[Member]) -> list[Member]:
    return [m for m in cluster if m not in excluded]


def agreed_leader(cluster: list[Member]) -> tuple[Member, dict]:
    return wait_for(lambda: leader(cluster), timeout=ELECTION_TIMEOUT, what="an agreed leader")


def assert_reads_current(workload: Workload, member: Member, when: str) -> None:
    """A linearizable read through ``member`` returns the register's current value."""
    op = workload.read_within(member, WRITE_WITHIN)
    assert op is not None, f"{when}: no linearizable read through {member.label} succeeded"
    expected = workload.possible_values()
    assert op.value in expected, (
        f"{when}: {member.host.name} reads {op.value!r}; expected the last acknowledged "
        f"write {workload.acknowledged()[-1:]!r} (or one of {len(expected) - 1} writes of "
        f"unknown outcome)"
    )


@allure.id("etcd-leader-loss-elects")
def test_leader_loss_elects_new_leader(
    lab: Lab, cluster: list[Member], faults: Faults, workload: Workload
) -> None:
    if lab.failure_tolerance < 1:
        pytest.skip(f"{len(cluster)} member(s) tolerate no failure: stopping the leader "
                    "would lose quorum")
    old, old_status = agreed_leader(cluster)
    survivors = others(cluster, [old])
    assert workload.write_within(survivors[0], WRITE_WITHIN), "a write before the fault failed"
    with evidence.step(f"stop etcd on the leader {old.host.name}"):
        asked = time.monotonic()
        faults.stop(old.host, "etcd")
        gone = time.monotonic()
    with evidence.step("wait for a new leader"):
        _, new_status = wait_for(
            lambda: leader(survivors), timeout=ELECTION_TIMEOUT,
            what=f"a new leader agreed by {', '.join(m.host.name for m in survivors)}",
            describe=lambda: str({m.host.name: status_of(m) for m in survivors}),
        )
        elapsed = time.monotonic() - gone
    # from the old leader's process gone until the survivors agree on a new leader (etcd hands
    # leadership over on SIGTERM, so often ~0); stopping it (SSH, control) is not etcd's time
    evidence.measure("etcd leader failover", elapsed)
    evidence.attach_text("leader stop", f"stopping {old.host.name} took {gone - asked:.2f}s")
    assert int(new_status["raftTerm"]) > int(old_status["raftTerm"]), (
        f"expected the raft term to rise after failover; was {old_status['raftTerm']}, "
        f"now {new_status['raftTerm']}"
    )
    for member in survivors:
        assert workload.write_within(member, WRITE_WITHIN), (
            f"expected writes through {member.label} after failover; every attempt in "
            f"{WRITE_WITHIN:g}s failed"
        )
        assert_reads_current(workload, member, "after failover")


@allure.id("etcd-minority-loss-keeps-quorum")
def test_minority_loss_keeps_writes_and_reads(
    lab: Lab, cluster: list[Member], faults: Faults, workload: Workload
) -> None:
    tolerance = lab.failure_tolerance
    if tolerance < 1:
        pytest.skip(f"{len(cluster)} member(s) tolerate no failure")
    current, _ = agreed_leader(cluster)
    stopped = others(cluster, [current])[:tolerance]
    alive = others(cluster, stopped)
    with evidence.step(f"stop etcd on {', '.join(m.host.name for m in stopped)}"):
        for member in stopped:
            faults.stop(member.host, "etcd")
    for member in alive:
        assert workload.write_within(member, WRITE_WITHIN), (
            f"with {len(stopped)} of {len(cluster)} members down (tolerance {tolerance}), "
            f"expected writes through {member.label}; every attempt in {WRITE_WITHIN:g}s failed"
        )
        assert_reads_current(workload, member, f"with {len(stopped)} member(s) down")
    with evidence.step("restart the stopped members and wait until they catch up"):
        faults.heal()
        target = int(alive[0].client.status()["header"]["revision"])

        def caught_up() -> bool:
            return all(
                int((status_of(m) or {}).get("header", {}).get("revision", -1)) >= target
                for m in stopped
            )

        wait_for(caught_up, timeout=HEAL_TIMEOUT, what=f"restarted members at revision {target}",
                 describe=lambda: str({m.host.name: status_of(m) for m in stopped}))
    for member in stopped:
        assert_reads_current(workload, member, "caught up after restart")


@allure.id("etcd-majority-loss-blocks-writes")
def test_majority_loss_blocks_writes_within_bound(
    lab: Lab, cluster: list[Member], faults: Faults, workload: Workload
) -> None:
    if len(cluster) < 2:
        pytest.skip("a single-member cluster has no majority to lose but itself")
    majority = len(cluster) // 2 + 1
    keep = cluster[-1]
    stopped = others(cluster, [keep])[:majority]
    with evidence.step(f"stop etcd on {', '.join(m.host.name for m in stopped)} (a majority)"):
        for member in stopped:
            faults.stop(member.host, "etcd")
    started = time.monotonic()
    wrote = workload.write(keep)
    write_elapsed = time.monotonic() - started
    assert not wrote, f"a write through {keep.label} succeeded without quorum"
    assert write_elapsed <= MAJORITY_LOSS_BOUND, (
        f"expected etcd to fail a write without quorum within {MAJORITY_LOSS_BOUND:g}s; "
        f"{keep.label} took {write_elapsed:.1f}s (the client gives up at {CLIENT_TIMEOUT:g}s)"
    )
    started = time.monotonic()
    read = workload.read(keep)
    read_elapsed = time.monotonic() - started
    assert read is None, f"a linearizable read through {keep.label} succeeded without quorum"
    assert read_elapsed <= MAJORITY_LOSS_BOUND, (
        f"expected etcd to fail a linearizable read without quorum within "
        f"{MAJORITY_LOSS_BOUND:g}s; {keep.label} took {read_elapsed:.1f}s"
    )
    try:
        keep.client.get(workload.key, serializable=True)
        serializable = "answered"
    except Exception as exc:  # noqa: BLE001 - allowed either way
        serializable = f"failed ({type(exc).__name__})"
    evidence.attach_text(
        "majority loss timings",
        f"write failed after {write_elapsed:.2f}s, linearizable read after {read_elapsed:.2f}s, "
        f"serializable read {serializable}",
    )


@allure.id("etcd-heal-keeps-acknowledged-writes")
def test_heal_restores_health_and_every_acknowledged_write(
    cluster: list[Member], faults: Faults, workload: Workload
) -> None:
    faults.heal()
    wait_for(lambda: healthy(cluster), timeout=HEAL_TIMEOUT, what="a healthy cluster")
    for member in cluster:
        assert workload.write_within(member, WRITE_WITHIN), (
            f"expected writes through {member.label} after healing; every attempt in "
            f"{WRITE_WITHIN:g}s failed"
        )
    acknowledged = set(workload.acknowledged())
    for member in cluster:
        lost = acknowledged - workload.logged(member)
        assert not lost, (
            f"{len(lost)} of {len(acknowledged)} acknowledged writes are missing when read "
            f"through {member.label}: {sorted(lost)[:5]}"
        )
    for member in cluster:
        assert_reads_current(workload, member, "after healing")


@allure.id("etcd-history-linearizable")
def test_history_is_linearizable(workload: Workload) -> None:
    if not workload.history.ops:
        pytest.skip("no operations were recorded (the fault checks were skipped)")
    assert_linearizable(workload.history)
