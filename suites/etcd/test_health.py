"""etcd health and membership: every member answers and the cluster is the inventory's."""

import allure
import pytest

from reports import evidence
from stackcheck.etcd.cluster import (
    Member,
    leader,
    name_of,
    names_by_id,
    problem,
    settles,
    status_of,
)
from stackcheck.lab import Lab

pytestmark = pytest.mark.owns("etcd")  # these report etcd's own health, never "blocked"

#: s: a cluster that is mid-election (a loaded machine, a member just restarted) may settle
SETTLE = 10.0


def unhealthy_endpoints(cluster: list[Member]) -> dict[str, str]:
    """Per member that does not answer or knows no leader: what is wrong."""
    out = {}
    for m in cluster:
        try:
            status = m.client.status()
            if str(status.get("leader", "0")) == "0":
                out[m.label] = "answers but has no leader"
        except Exception as exc:  # noqa: BLE001 - reported per endpoint
            out[m.label] = problem(exc)
    return out


@allure.feature("health")
@allure.id("etcd-health-endpoints")
def test_every_endpoint_is_healthy(cluster: list[Member]) -> None:
    seen: dict[str, str] = {}

    def all_healthy() -> bool:
        seen.clear()
        seen.update(unhealthy_endpoints(cluster))
        return not seen

    settles(all_healthy, SETTLE, "every endpoint healthy", describe=lambda: str(seen))
    assert not seen, (
        f"expected every endpoint healthy with a leader (waited {SETTLE:g}s); saw {seen}"
    )


def member_list_of(member: Member) -> dict[str, str]:
    """The member list as ``member``'s cluster knows it: peer address -> member name."""
    out = {}
    for listed in member.client.members():
        peers = listed.get("peerURLs", [])
        address = peers[0].split("://", 1)[-1].rsplit(":", 1)[0].strip("[]") if peers else "?"
        out[address] = listed.get("name", "")
    return out


@allure.feature("membership")
@allure.id("etcd-members-match-inventory")
def test_member_list_matches_inventory(lab: Lab, cluster: list[Member]) -> None:
    expected = {h.address: h.name for h in lab.hosts_with("etcd")}
    lists, silent = {}, {}
    for m in cluster:
        try:
            lists[m.host.name] = member_list_of(m)
        except Exception as exc:  # noqa: BLE001 - a down member is the health check's to report
            silent[m.label] = problem(exc)
    evidence.attach_json("member list per member", {"lists": lists, "no answer": silent})
    assert lists, f"expected a member list from some member; none answered: {silent}"
    wrong = {name: sorted(seen) for name, seen in lists.items() if set(seen) != set(expected)}
    assert not wrong, (
        f"expected members at the inventory's etcd hosts {sorted(expected)}; "
        f"these members list other peer addresses: {wrong}"
    )
    names = {a: n for seen in lists.values() for a, n in seen.items() if n not in (expected[a], a)}
    assert not names, f"member names differ from host names: {names} (expected {expected})"


@allure.feature("membership")
@allure.id("etcd-one-cluster-id")
def test_every_member_is_in_the_same_cluster(cluster: list[Member]) -> None:
    ids = {m.label: str(s["header"]["cluster_id"]) for m in cluster if (s := status_of(m))}
    assert ids, "expected some member to answer status; none did"
    by_cluster: dict[str, list[str]] = {}
    for label, cluster_id in ids.items():
        by_cluster.setdefault(cluster_id, []).append(label)
    assert len(by_cluster) == 1, (
        f"expected every member in one cluster; the members report {len(by_cluster)} "
        f"cluster ids: {by_cluster} (a member bootstrapped on its own, split brain)"
    )


@allure.feature("membership")
@allure.id("etcd-size-odd")
def test_cluster_size_is_odd(lab: Lab, cluster: list[Member]) -> None:
    size = len(cluster)
    allure.dynamic.description(f"{size} members tolerate {lab.failure_tolerance} failure(s)")
    assert size % 2 == 1, (
        f"expected an odd number of members; saw {size} (tolerates "
        f"{lab.failure_tolerance}, the same as {size - 1})"
    )


def leader_views(cluster: list[Member]) -> dict[str, tuple[str, str] | None]:
    """Per host: (leader as ``h1 (8e9e…)``, raft term) as that member sees them, None if it
    does not answer."""
    statuses = {m.host.name: status_of(m) for m in cluster}
    known = names_by_id(cluster, statuses)
    return {name: (name_of(str(s.get("leader", "0")), known), str(s.get("raftTerm", "?")))
            if s else None for name, s in statuses.items()}


@allure.feature("leader")
@allure.id("etcd-one-leader-agreed")
def test_exactly_one_leader_agreed_by_all(cluster: list[Member]) -> None:
    views: dict[str, tuple[str, str] | None] = {}

    def agreed() -> bool:
        views.clear()
        views.update(leader_views(cluster))
        return None not in views.values() and len(set(views.values())) == 1

    settles(agreed, SETTLE, "every member to agree on the leader", describe=lambda: str(views))
    missing = [name for name, v in views.items() if v is None]
    assert not missing, f"expected every member to answer status; no answer from {missing}"
    leaders = {name: v[0] for name, v in views.items() if v}
    terms = {name: v[1] for name, v in views.items() if v}
    assert len(set(leaders.values())) == 1, (
        f"expected one leader agreed by all (waited {SETTLE:g}s); members name: {leaders}"
    )
    assert len(set(terms.values())) == 1, f"members disagree on the raft term: {terms}"
    leader(cluster)  # the agreed leader is one of the members
