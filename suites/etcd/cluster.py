"""What the etcd checks read from a cluster: members, their status, a recorded workload."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

from etcd3gw.client import Etcd3Client

from stackcheck.etcd import client_for, endpoint_host, member_id
from stackcheck.lab import Host, Lab
from stackcheck.linearizability import History


@dataclass
class Member:
    host: Host
    endpoint: str
    client: Etcd3Client


def members(lab: Lab, timeout: float = 5.0) -> list[Member]:
    """The inventory's etcd endpoints, each paired with the host that has its address."""
    assert lab.etcd is not None
    by_address = {h.address: h for h in lab.hosts}
    out = []
    for endpoint in lab.etcd.endpoints:
        host = by_address.get(endpoint_host(endpoint))
        if host is None:
            raise LookupError(f"etcd endpoint {endpoint} is not the address of any host")
        out.append(Member(host, endpoint, client_for(lab.etcd, endpoint, timeout)))
    return out


def status_of(member: Member) -> dict | None:
    try:
        return member.client.status()
    except Exception:  # noqa: BLE001 - a stopped member answers nothing
        return None


def leader(cluster: list[Member]) -> tuple[Member, dict]:
    """The member every reachable member names as leader (raises if they disagree)."""
    views = {m.endpoint: s for m in cluster if (s := status_of(m))}
    leaders = {str(s["leader"]) for s in views.values()}
    if len(leaders) != 1 or "0" in leaders:
        raise AssertionError(f"members disagree on the leader or have none: {leaders}")
    (leader_id,) = leaders
    for m in cluster:
        status = views.get(m.endpoint)
        if status and member_id(status) == leader_id:
            return m, status
    raise AssertionError(f"leader {leader_id} is not among the reachable members")


def healthy(cluster: list[Member]) -> bool:
    """Every member answers, all agree on one leader, and a linearizable read works."""
    try:
        leader(cluster)
        return all(status_of(m) for m in cluster) and all(
            m.client.get("stackcheck/health") is not None for m in cluster
        )
    except Exception:  # noqa: BLE001 - not healthy yet
        return False


class Workload:
    """Writes and linearizable reads of one register, every operation recorded."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.history = History()
        self.counter = 0

    def write(self, member: Member) -> bool:
        self.counter += 1
        value = f"v{self.counter}-{time.time_ns()}"
        op = self.history.call("write", value, client=member.host.name)
        puts = [{"request_put": {"key": _b64(k), "value": _b64(value)}}
                for k in (self.key, f"{self.key}/log/{value}")]
        try:  # the register and a log entry, atomically: the log proves no write was lost
            member.client.transaction({"compare": [], "success": puts, "failure": []})
        except Exception:  # noqa: BLE001 - outcome unknown, recorded as such
            self.history.fail(op)
            return False
        self.history.ok(op)
        return True

    def read(self, member: Member) -> bool:
        op = self.history.call("read", client=member.host.name)
        try:
            values = member.client.get(self.key)
        except Exception:  # noqa: BLE001 - a failed read has no effect
            self.history.fail(op)
            return False
        self.history.ok(op, values[0].decode() if values else None)
        return True

    def acknowledged(self) -> list[str]:
        return self.history.acknowledged_writes()

    def logged(self, member: Member) -> set[str]:
        """Values whose log entry is present, read linearizably through ``member``."""
        prefix = f"{self.key}/log/"
        return {value.decode() for value, _ in member.client.get_prefix(prefix)}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
