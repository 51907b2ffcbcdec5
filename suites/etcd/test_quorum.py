"""etcd under faults: quorum is kept and lost exactly as Raft promises, no acknowledged write lost.

The checks run in file order on one worker (they are ``disruptive``) and share one
recorded workload on a single register, checked for linearizability at the end.
"""

from __future__ import annotations

import time

import allure
import pytest

from stackcheck.faults import Faults
from stackcheck.lab import Lab
from stackcheck.linearizability import check
from stackcheck.waits import wait_for
from suites.etcd.cluster import Member, Workload, healthy, leader, status_of

ELECTION_TIMEOUT = 15.0  # s: a new leader after the old one stopped
HEAL_TIMEOUT = 30.0  # s: every member healthy after restarts
MAJORITY_LOSS_BOUND = 12.0  # s: a write without quorum must have failed by then

pytestmark = [pytest.mark.disruptive, allure.feature("quorum under faults")]


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


def term_of(member: Member) -> int:
    return int((status_of(member) or {}).get("raftTerm", 0))


@allure.id("etcd-leader-loss-elects")
def test_leader_loss_elects_new_leader(
    lab: Lab, cluster: list[Member], faults: Faults, workload: Workload
) -> None:
    if lab.failure_tolerance < 1:
        pytest.skip(f"{len(cluster)} member(s) tolerate no failure: stopping the leader "
                    "would lose quorum")
    old, old_status = leader(cluster)
    survivors = others(cluster, [old])
    assert workload.write(survivors[0]), "a write before the fault failed"
    with allure.step(f"stop etcd on the leader {old.host.name}"):
        faults.stop(old.host, "etcd")
        started = time.monotonic()
    with allure.step("wait for a new leader"):
        _, new_status = wait_for(
            lambda: (found := leader(survivors)) and found[0] is not old and found,
            timeout=ELECTION_TIMEOUT, what="a new leader among the survivors",
        )
        elapsed = time.monotonic() - started
    allure.attach(f"{elapsed:.3f}", "leader failover seconds", allure.attachment_type.TEXT)
    assert int(new_status["raftTerm"]) > int(old_status["raftTerm"]), (
        f"expected the raft term to rise after failover; was {old_status['raftTerm']}, "
        f"now {new_status['raftTerm']}"
    )
    for member in survivors:
        assert workload.write(member), f"a write through {member.host.name} failed after failover"
        assert workload.read(member), f"a read through {member.host.name} failed after failover"


@allure.id("etcd-minority-loss-keeps-quorum")
def test_minority_loss_keeps_writes_and_reads(
    lab: Lab, cluster: list[Member], faults: Faults, workload: Workload
) -> None:
    tolerance = lab.failure_tolerance
    if tolerance < 1:
        pytest.skip(f"{len(cluster)} member(s) tolerate no failure")
    current, _ = leader(cluster)
    stopped = others(cluster, [current])[:tolerance]
    alive = others(cluster, stopped)
    with allure.step(f"stop etcd on {', '.join(m.host.name for m in stopped)}"):
        for member in stopped:
            faults.stop(member.host, "etcd")
    for member in alive:
        assert workload.write(member), (
            f"with {len(stopped)} of {len(cluster)} members down (tolerance {tolerance}), "
            f"a write through {member.host.name} failed"
        )
        assert workload.read(member), f"a linearizable read through {member.host.name} failed"
    with allure.step("restart the stopped members and wait until they catch up"):
        faults.heal()
        target = int(alive[0].client.status()["header"]["revision"])

        def caught_up() -> bool:
            return all(
                int((status_of(m) or {}).get("header", {}).get("revision", -1)) >= target
                for m in stopped
            )

        wait_for(caught_up, timeout=HEAL_TIMEOUT, what="restarted members to catch up",
                 describe=lambda: str({m.host.name: status_of(m) for m in stopped}))
    value = workload.acknowledged()[-1]
    for member in stopped:
        got = member.client.get(workload.key)
        assert got and got[0].decode() == value, (
            f"{member.host.name} caught up but reads {got!r}; the last acknowledged write "
            f"was {value!r}"
        )


@allure.id("etcd-majority-loss-blocks-writes")
def test_majority_loss_blocks_writes_within_bound(
    lab: Lab, cluster: list[Member], faults: Faults, workload: Workload
) -> None:
    if len(cluster) < 2:
        pytest.skip("a single-member cluster has no majority to lose but itself")
    majority = len(cluster) // 2 + 1
    keep = cluster[-1]
    stopped = others(cluster, [keep])[:majority]
    with allure.step(f"stop etcd on {', '.join(m.host.name for m in stopped)} (a majority)"):
        for member in stopped:
            faults.stop(member.host, "etcd")
    started = time.monotonic()
    wrote = workload.write(keep)
    write_elapsed = time.monotonic() - started
    assert not wrote, f"a write through {keep.host.name} succeeded without quorum"
    assert write_elapsed <= MAJORITY_LOSS_BOUND, (
        f"expected the write without quorum to fail within {MAJORITY_LOSS_BOUND}s; "
        f"it took {write_elapsed:.1f}s"
    )
    started = time.monotonic()
    read = workload.read(keep)
    read_elapsed = time.monotonic() - started
    assert not read, f"a linearizable read through {keep.host.name} succeeded without quorum"
    assert read_elapsed <= MAJORITY_LOSS_BOUND, (
        f"expected the linearizable read to fail within {MAJORITY_LOSS_BOUND}s; "
        f"it took {read_elapsed:.1f}s"
    )
    try:
        keep.client.get(workload.key, serializable=True)
        serializable = "answered"
    except Exception as exc:  # noqa: BLE001 - allowed either way
        serializable = f"failed ({type(exc).__name__})"
    allure.attach(
        f"write failed after {write_elapsed:.2f}s, linearizable read after {read_elapsed:.2f}s, "
        f"serializable read {serializable}", "majority loss timings", allure.attachment_type.TEXT
    )


@allure.id("etcd-heal-keeps-acknowledged-writes")
def test_heal_restores_health_and_every_acknowledged_write(
    cluster: list[Member], faults: Faults, workload: Workload
) -> None:
    faults.heal()
    wait_for(lambda: healthy(cluster), timeout=HEAL_TIMEOUT, what="a healthy cluster")
    for member in cluster:
        assert workload.write(member), f"a write through {member.host.name} failed after healing"
    acknowledged = set(workload.acknowledged())
    for member in cluster:
        lost = acknowledged - workload.logged(member)
        assert not lost, (
            f"{len(lost)} of {len(acknowledged)} acknowledged writes are missing when read "
            f"through {member.host.name}: {sorted(lost)[:5]}"
        )
    final = workload.acknowledged()[-1]
    for member in cluster:
        got = member.client.get(workload.key)
        assert got and got[0].decode() == final, (
            f"{member.host.name} reads {got!r} after healing; the last acknowledged write "
            f"was {final!r}"
        )


@allure.id("etcd-history-linearizable")
def test_history_is_linearizable(workload: Workload) -> None:
    if not workload.history.ops:
        pytest.skip("no operations were recorded (the fault checks were skipped)")
    ok, explanation = check(workload.history)
    if not ok:
        allure.attach(workload.history.to_json(), "history.json", allure.attachment_type.JSON)
    assert ok, explanation
