"""etcd health and membership: every member answers and the cluster is the inventory's."""

import allure

from stackcheck.lab import Lab
from suites.etcd.cluster import Member, leader, status_of


@allure.feature("health")
@allure.id("etcd-health-endpoints")
def test_every_endpoint_is_healthy(cluster: list[Member]) -> None:
    unhealthy = {}
    for m in cluster:
        try:
            status = m.client.status()
            if str(status.get("leader", "0")) == "0":
                unhealthy[m.endpoint] = "answers but has no leader"
        except Exception as exc:  # noqa: BLE001 - reported per endpoint
            unhealthy[m.endpoint] = f"{type(exc).__name__}: {exc}"
    assert not unhealthy, f"expected every endpoint healthy with a leader; saw {unhealthy}"


@allure.feature("membership")
@allure.id("etcd-members-match-inventory")
def test_member_list_matches_inventory(lab: Lab, cluster: list[Member]) -> None:
    listed = cluster[0].client.members()
    allure.attach(str(listed), "member list", allure.attachment_type.TEXT)
    expected = {h.address: h.name for h in lab.hosts_with("etcd")}
    seen = {}
    for member in listed:
        peers = member.get("peerURLs", [])
        address = peers[0].split("://", 1)[-1].rsplit(":", 1)[0].strip("[]") if peers else "?"
        seen[address] = member.get("name", "")
    assert set(seen) == set(expected), (
        f"expected members at the inventory's etcd hosts {sorted(expected)}; "
        f"member list has peer addresses {sorted(seen)}"
    )
    wrong = {a: n for a, n in seen.items() if n not in (expected[a], a)}
    assert not wrong, f"member names differ from host names: {wrong} (expected {expected})"


@allure.feature("membership")
@allure.id("etcd-size-odd")
def test_cluster_size_is_odd(lab: Lab, cluster: list[Member]) -> None:
    size = len(cluster)
    allure.dynamic.description(f"{size} members tolerate {lab.failure_tolerance} failure(s)")
    assert size % 2 == 1, (
        f"expected an odd number of members; saw {size} (tolerates "
        f"{lab.failure_tolerance}, the same as {size - 1})"
    )


@allure.feature("leader")
@allure.id("etcd-one-leader-agreed")
def test_exactly_one_leader_agreed_by_all(cluster: list[Member]) -> None:
    views = {m.host.name: status_of(m) for m in cluster}
    missing = [name for name, s in views.items() if s is None]
    assert not missing, f"expected every member to answer status; no answer from {missing}"
    leaders = {name: s["leader"] for name, s in views.items()}
    terms = {name: s["raftTerm"] for name, s in views.items()}
    assert len(set(leaders.values())) == 1, f"members disagree on the leader: {leaders}"
    assert len(set(terms.values())) == 1, f"members disagree on the raft term: {terms}"
    leader(cluster)  # the agreed leader is one of the members

