"""etcd health and membership: every member answers and the cluster is the inventory's."""

import allure
import pytest

from stackcheck.etcd.cluster import (
    Listed,
    Member,
    differences,
    leader,
    membership,
    name_of,
    names_by_id,
    problem,
    settles,
    status_of,
)
from stackcheck.lab import Lab
from stackcheck_reports import evidence

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


@allure.feature("membership")
@allure.id("etcd-members-match-inventory")
def test_member_list_matches_inventory(lab: Lab, cluster: list[Member]) -> None:
    expected = {h.address: h.name for h in lab.hosts_with("etcd")}
    lists: dict[str, list[Listed]] = {}
    silent: dict[str, str] = {}
    for m in cluster:
        try:
            lists[m.host.name] = [Listed.from_gateway(item) for item in m.client.members()]
        except Exception as exc:  # noqa: BLE001 - a down member is the health check's to report
            silent[m.label] = problem(exc)
    evidence.attach_json("member list per member", {
        "lists": {name: [m.describe() for m in listed] for name, listed in lists.items()},
        "no answer": silent})
    assert lists, f"expected a member list from some member; none answered: {silent}"
    told: dict[str, list[str]] = {}  # each difference -> the members whose list shows it
    for name, listed in lists.items():
        for difference in differences(listed, expected):
            told.setdefault(difference, []).append(name)
    found = [text if len(names) == len(lists) else f"{text} (in the list of {', '.join(names)})"
             for text, names in told.items()]
    sizes = sorted({len(listed) for listed in lists.values()})
    assert not found, (
        f"expected the member list to be the inventory's etcd hosts "
        f"({', '.join(expected.values())}); it has {' or '.join(map(str, sizes))} members: "
        + "; ".join(found))


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
def test_cluster_size_is_odd(cluster: list[Member]) -> None:
    """The member list (started or not) has an odd number of members."""
    listed = membership(cluster)
    who = ", ".join(sorted(m.name for m in listed.members if m.started)
                    + [m.describe() for m in listed.unstarted])
    allure.dynamic.description(f"{listed.size} members (the member list of {listed.told_by}) "
                               f"tolerate {listed.tolerance} failure(s)")
    assert listed.size % 2 == 1, (
        f"expected an odd number of members; the member list of {listed.told_by} has "
        f"{listed.size} ({who}): "
        f"they tolerate {listed.tolerance} failure(s), the same as {listed.size - 1}"
    )


def leader_views(cluster: list[Member]) -> dict[str, tuple[str, str] | None]:
    """Per host: (leader as ``h1 (8e9e…)``, raft term) as that member sees them, None if it
    does not answer."""
    statuses = {m.host.name: status_of(m) for m in cluster}
    known = names_by_id(cluster, statuses)
    return {name: (name_of(str(s.get("leader", "0")), known), str(s.get("raftTerm", "?")))
            if s else None for name, s in statuses.items()}


def agreement(views: dict[str, tuple[str, str] | None]) -> str:
    """``h1, h2 name leader h1 (5455…) in term 4; h3 does not answer``."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name, view in views.items():
        if view is not None:
            groups.setdefault(view, []).append(name)
    parts = [f"{', '.join(names)} name{'s' if len(names) == 1 else ''} leader {named} in term "
             f"{term}" for (named, term), names in groups.items()]
    silent = [name for name, view in views.items() if view is None]
    if silent:
        parts.append(f"{', '.join(silent)} do{'es' if len(silent) == 1 else ''} not answer")
    return "; ".join(parts)


@allure.feature("leader")
@allure.id("etcd-one-leader-agreed")
def test_exactly_one_leader_agreed_by_all(cluster: list[Member]) -> None:
    """The members that answer agree on one leader and term, and they are a quorum of the
    member list (a member that does not answer is the health check's to report)."""
    views: dict[str, tuple[str, str] | None] = {}

    def agreed() -> bool:
        views.clear()
        views.update(leader_views(cluster))
        return None not in views.values() and len(set(views.values())) == 1

    settles(agreed, SETTLE, "every member to agree on the leader",
            describe=lambda: agreement(views))
    answered = {name: view for name, view in views.items() if view is not None}
    assert answered, f"expected some member to answer status; none did: {agreement(views)}"
    assert len({view[0] for view in answered.values()}) == 1, (
        f"expected one leader agreed by all (waited {SETTLE:g}s); {agreement(views)}")
    assert len({view[1] for view in answered.values()}) == 1, (
        f"expected the members to agree on the raft term; {agreement(views)}")
    listed = membership(cluster)
    assert len(answered) >= listed.quorum, (
        f"expected a quorum of the {listed.size} listed members ({listed.quorum}) to agree on "
        f"the leader; only {len(answered)} answered: {agreement(views)}")
    allure.dynamic.description(f"{len(answered)} of {listed.size} members asked: "
                               f"{agreement(views)}")
    leader([m for m in cluster if m.host.name in answered])  # the leader is one of them
