"""etcd's part of the preflight: every member's status and a linearizable read through it;
quorum, split brain and leader agreement from the members' answers; a member that fails is
described with its host's word (and told apart from one only the runner cannot reach)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from stackcheck import services
from stackcheck.errors import etcd_error
from stackcheck.etcd import client_for, hex_id
from stackcheck.lab import Host, Lab
from stackcheck.preflight import (
    API_TIMEOUT,
    DEGRADED,
    DOWN,
    OK,
    LayerHealth,
    LayerPreflight,
    Seen,
    endpoint_host_name,
    joined,
)
from stackcheck.ssh import host_connection

LINE = "etcd"
#: how a member alive but out of the runner's reach is described (it still counts for quorum)
RUNNER_ONLY = "unreachable from the runner"


@dataclass
class EtcdSeen:
    why: str | None  # None: healthy
    status: dict | None = None  # the member's status, when it answered one


def probe_etcd_member(lab: Lab, endpoint: str) -> EtcdSeen:
    """The member's status and whether it serves a linearizable read."""
    assert lab.etcd is not None
    client = client_for(lab.etcd, endpoint, timeout=API_TIMEOUT)
    try:
        status = client.status()
    except Exception as exc:  # noqa: BLE001 - an unreachable member is the finding
        return EtcdSeen(f"does not answer ({etcd_error(exc)})")
    if not int(status.get("leader", 0) or 0):
        return EtcdSeen("answers but has no leader", status)
    try:
        client.get("/stackcheck/preflight")  # linearizable: needs a quorum behind the member
    except Exception as exc:  # noqa: BLE001
        return EtcdSeen(f"answers but a linearizable read fails ({etcd_error(exc)})", status)
    return EtcdSeen(None, status)


def probe_etcd(lab: Lab, endpoint: str) -> str | None:
    """None if ``endpoint`` answers a linearizable read; else why not, in one line."""
    return probe_etcd_member(lab, endpoint).why


def _split_brain(lab: Lab, statuses: dict[str, dict]) -> str | None:
    """'split brain: …' when the members that answered report different cluster ids."""
    clusters: dict[str, list[str]] = {}
    for endpoint, status in statuses.items():
        cluster = str((status.get("header") or {}).get("cluster_id", ""))
        clusters.setdefault(cluster, []).append(endpoint_host_name(lab, endpoint))
    if len(clusters) < 2:
        return None
    parts = "; ".join(f"{joined(names)} in cluster {hex_id(cid)}"
                      for cid, names in clusters.items())
    return f"split brain: the members report {len(clusters)} cluster ids: {parts}"


def _leaders(lab: Lab, statuses: dict[str, dict]) -> dict[str, list[str]]:
    """leader id -> the hosts that name it (members that know a leader)."""
    out: dict[str, list[str]] = {}
    for endpoint, status in statuses.items():
        leader = str(status.get("leader", "0") or "0")
        if leader != "0":
            out.setdefault(leader, []).append(endpoint_host_name(lab, endpoint))
    return out


def etcd_health(lab: Lab, failures: dict[str, str | None],
                statuses: dict[str, dict] | None = None) -> LayerHealth:
    """Quorum from the members' answers: a majority must serve linearizable reads; the
    members that answered must be one cluster and agree on the leader."""
    total = len(failures)
    statuses = statuses or {}
    split = _split_brain(lab, statuses)
    if split:
        return LayerHealth(DOWN, split, [endpoint_host_name(lab, ep) for ep in statuses])
    leaders = _leaders(lab, statuses)
    bad = {ep: why for ep, why in failures.items() if why}
    if len(leaders) > 1:
        ranked = sorted(leaders.items(), key=lambda item: -len(item[1]))
        views = "; ".join(f"{joined(names)}: leader {hex_id(lid)}" for lid, names in ranked)
        minority = [name for _, names in ranked[1:] for name in names]
        return LayerHealth(DEGRADED, f"the members disagree on the leader: {views}", minority)
    if not bad:
        return LayerHealth(OK, f"all {total} members healthy")
    names = [endpoint_host_name(lab, ep) for ep in bad]
    why = {endpoint_host_name(lab, ep): reason for ep, reason in bad.items() if reason}
    detail = "; ".join(f"{endpoint_host_name(lab, ep)}: {reason}" for ep, reason in bad.items())
    good = total - len(bad)
    alive = good + sum(1 for reason in bad.values() if reason and reason.startswith(RUNNER_ONLY))
    if alive > good and alive > total // 2:
        return LayerHealth(DEGRADED, f"quorum kept ({alive}/{total} alive, {good} reachable from "
                                     f"the runner); {detail}", names, why)
    if good > total // 2:
        return LayerHealth(DEGRADED, f"quorum kept ({good}/{total}); {detail}", names, why)
    return LayerHealth(DOWN, f"no quorum ({good}/{total} healthy); {detail}", names, why)


def _runner_only(lab: Lab, host: Host, endpoint: str) -> str | None:
    """'answers on h3 itself' when the member's endpoint answers from its own host (a TLS
    handshake with its certificate, or an HTTP reply): then only the runner cannot reach it
    (a filter, a route); the member is not dead."""
    url = urlsplit(endpoint)
    address, port = url.hostname or host.address, url.port or 2379
    if url.scheme == "https":
        probe = (f"timeout 3 openssl s_client -connect {address}:{port} </dev/null 2>&1 "
                 "| grep -q 'BEGIN CERTIFICATE\\|depth=0'")
    else:
        probe = (f"timeout 3 bash -c 'exec 3<>/dev/tcp/{address}/{port} && "
                 "printf \"GET /version HTTP/1.0\\r\\n\\r\\n\" >&3 && cat <&3' | grep -q '^HTTP/'")
    try:
        result = host_connection(lab, host).run(probe)
    except Exception:  # noqa: BLE001 - no SSH: nothing to tell
        return None
    return f"its endpoint answers on {host.name} itself" if result.rc == 0 else None


def _member_name(lab: Lab, statuses: dict[str, dict], member_id: str) -> str:
    """``h1 (1a5e…)``: a member id with the host whose endpoint answered as it."""
    for endpoint, status in statuses.items():
        if str((status.get("header") or {}).get("member_id")) == str(member_id):
            return f"{endpoint_host_name(lab, endpoint)} ({hex_id(member_id)})"
    return hex_id(member_id)


def _etcd_word(lab: Lab, endpoint: str, seen: EtcdSeen, statuses: dict[str, dict]) -> str:
    """The member's failure with its host's word; a member alive but unreachable from the
    runner is said to be so, with what the other members say of it."""

    assert seen.why is not None
    name = endpoint_host_name(lab, endpoint)
    try:
        host = lab.host(name)
    except KeyError:
        return seen.why
    state = services.unit_state(lab, host, "etcd")
    if state is None:
        return seen.why
    line = f"{state.describe()} — {seen.why}"
    network = any(word in seen.why for word in ("timed out", "refused", "no route",
                                                "unreachable", "reset"))
    if state.word == "active" and seen.status is None and network:
        local = _runner_only(lab, host, endpoint)
        if local:
            leaders = _leaders(lab, statuses)
            agree = (f"; the other members agree on leader {_member_name(lab, statuses, lid)}"
                     if len(leaders) == 1 and (lid := next(iter(leaders))) else "")
            reason = seen.why.removeprefix("does not answer ").strip("()")
            return (f"{RUNNER_ONLY} ({reason}), alive: {state.unit} active and {local}{agree}")
    log = state.last_log() if state.word != "active" else ""
    return line + (f"; {log}" if log else "")


class EtcdPreflight(LayerPreflight):
    def probes(self, lab: Lab, run_id: str) -> dict[str, Callable[[], Any]]:
        endpoints = list(lab.etcd.endpoints) if lab.etcd else []
        return {endpoint: partial(probe_etcd_member, lab, endpoint) for endpoint in endpoints}

    def unanswered(self, key: str, why: str) -> EtcdSeen:
        return EtcdSeen(why)

    def judge(self, seen: Seen) -> dict[str, LayerHealth]:
        lab, members = seen.lab, seen.probed
        if not members:
            return {}
        statuses = {ep: s.status for ep, s in members.items() if s.status}
        words = seen.ask({
            endpoint: partial(_etcd_word, lab, endpoint, member, statuses)
            for endpoint, member in members.items()
            if member.why and endpoint_host_name(lab, endpoint) in seen.reachable})()
        return {LINE: etcd_health(
            lab, {ep: words.get(ep, s.why) for ep, s in members.items()}, statuses)}


PREFLIGHT = EtcdPreflight()
