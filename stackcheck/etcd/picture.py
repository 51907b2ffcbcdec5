"""etcd's part of the lab picture (:mod:`stackcheck.picture`): each member's health and who
leads, on its host's card, and the cluster in one line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stackcheck.errors import etcd_error
from stackcheck.etcd import endpoint_host, member_id, statuses
from stackcheck.lab import Lab
from stackcheck.picture.model import BAD, OK, UNKNOWN, HostView, LayerView, Line, Probing

ROLE = "etcd"


@dataclass
class Member:
    """One etcd endpoint as a status call saw it."""

    endpoint: str
    host: str | None  # the inventory host of the endpoint, if any
    healthy: bool
    leader: bool = False
    detail: str = ""  # version and raft term when healthy, why it does not answer otherwise


class EtcdPicture:
    """The lab picture's etcd part (:class:`stackcheck.picture.model.LayerPicture`)."""

    def probe(self, lab: Lab, probing: Probing) -> list[Member] | None:
        """Every endpoint's ``maintenance/status`` (3 s each)."""
        if lab.etcd is None:
            return None
        by_address = {h.address: h.name for h in lab.hosts}
        members = []
        for endpoint, status in statuses(lab.etcd, timeout=3.0).items():
            host = by_address.get(endpoint_host(endpoint))
            if isinstance(status, Exception):
                members.append(Member(endpoint, host, healthy=False,
                                      detail=etcd_error(status)[:120]))
                continue
            leader = str(status.get("leader", "")) == member_id(status)
            detail = f"v{status.get('version', '?')}, raft term {status.get('raftTerm', '?')}"
            members.append(Member(endpoint, host, healthy=True, leader=leader, detail=detail))
        return members

    def view(self, hosts: Sequence[HostView], found: list[Member] | None) -> LayerView:
        members = found
        part = LayerView()
        if members is None and not any(ROLE in h.roles for h in hosts):
            return part  # nothing of etcd in this lab
        by_host = {m.host: m for m in members or [] if m.host}
        for host in hosts:
            part.hosts[host.name] = [_host_line(host, by_host.get(host.name))]
        if members is None:
            return part
        healthy = [m for m in members if m.healthy]
        leaders = sorted({m.host or m.endpoint for m in members if m.leader})
        ok = len(healthy) == len(members) and len(leaders) == 1
        part.cluster.append(Line(f"etcd: {len(members)} members, {len(healthy)} healthy, "
                                 f"leader {', '.join(leaders) or 'NONE'}",
                                 OK if ok else BAD, strong=not ok))
        for member in members:
            if not member.healthy:
                where = f"{member.host}: etcd member" if member.host else \
                    f"etcd member at {member.endpoint}"
                part.problems.append(f"{where} does not answer ({member.detail})")
        if members and not leaders:
            part.problems.append("etcd: no member reports a leader")
        return part


def _host_line(host: HostView, member: Member | None) -> Line:
    if member is None:
        return Line("etcd: not read" if ROLE in host.roles else "etcd: not a member", UNKNOWN)
    tip = f"{member.endpoint}: {member.detail}"
    if not member.healthy:
        return Line(f"etcd: DOWN: {member.detail}", BAD, strong=True, tip=tip)
    role = "★ leader" if member.leader else "follower"
    return Line(f"etcd: {role}, healthy", OK, strong=member.leader, tip=tip)


PICTURE = EtcdPicture()
