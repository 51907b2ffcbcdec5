"""What the etcd checks read from a cluster: members, their status, a recorded workload."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from etcd3gw.client import Etcd3Client

from reports import evidence
from stackcheck.etcd import client_for, endpoint_host, member_id
from stackcheck.lab import Host, Lab
from stackcheck.linearizability import History, Op, check
from stackcheck.waits import WaitTimeout, wait_for


@dataclass
class Member:
    host: Host
    endpoint: str
    client: Etcd3Client

    @property
    def label(self) -> str:
        """How messages name a member: ``h2 (https://10.0.0.12:2379)``."""
        return f"{self.host.name} ({self.endpoint})"


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


def problem(exc: Exception) -> str:
    """An error as a short phrase (some etcd3gw errors have an empty message)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else f"does not answer ({type(exc).__name__})"


def leader(cluster: list[Member]) -> tuple[Member, dict]:
    """The member every reachable member names as leader (raises if they disagree)."""
    views = {m.endpoint: s for m in cluster if (s := status_of(m))}
    leaders = {str(s.get("leader", "0")) for s in views.values()}
    if len(leaders) != 1 or "0" in leaders:
        raise AssertionError(f"members disagree on the leader or have none: {leaders}")
    (leader_id,) = leaders
    for m in cluster:
        status = views.get(m.endpoint)
        if status and member_id(status) == leader_id:
            return m, status
    raise AssertionError(f"leader {leader_id} is not among the reachable members")


def settles(condition: Callable[[], bool], seconds: float, what: str = "the cluster to settle"
            ) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass; whether it held in the end.

    An exception from ``condition`` is raised at once (a check must not mistake it for a
    pass); the wait is recorded like every other.
    """
    try:
        wait_for(condition, timeout=seconds, interval=0.2, what=what, retry_errors=False)
    except WaitTimeout:
        return False
    return True


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

    def read(self, member: Member) -> Op | None:
        """A linearizable read of the register: its recorded op, or None if it failed."""
        op = self.history.call("read", client=member.host.name)
        try:
            values = member.client.get(self.key)
        except Exception:  # noqa: BLE001 - a failed read has no effect
            self.history.fail(op)
            return None
        self.history.ok(op, values[0].decode() if values else None)
        return op

    def write_within(self, member: Member, seconds: float) -> bool:
        """Write through ``member`` until one write is acknowledged or ``seconds`` pass.

        On a loaded machine an election nobody caused can fail a single write; a cluster
        without quorum fails every attempt. Failed attempts stay in the history (outcome
        unknown), so the linearizability check sees them too.
        """
        try:
            wait_for(lambda: self.write(member), timeout=seconds, interval=0.5,
                     what=f"an acknowledged write through {member.host.name}")
        except WaitTimeout:
            return False
        return True

    def read_within(self, member: Member, seconds: float) -> Op | None:
        """Read through ``member`` until a read succeeds or ``seconds`` pass."""
        try:
            return wait_for(lambda: self.read(member), timeout=seconds, interval=0.5,
                            what=f"a linearizable read through {member.host.name}")
        except WaitTimeout:
            return None

    def acknowledged(self) -> list[str]:
        return self.history.acknowledged_writes()

    def possible_values(self) -> set[str | None]:
        """What the register may hold now: the last acknowledged write, or a write whose
        outcome is unknown (it may have taken effect after that one)."""
        acked = self.acknowledged()
        unknown = {op.value for op in self.history.ops
                   if op.kind == "write" and op.outcome == "unknown"}
        return {acked[-1] if acked else self.history.initial} | unknown

    def logged(self, member: Member) -> set[str]:
        """Values whose log entry is present, read linearizably through ``member``."""
        prefix = f"{self.key}/log/"
        return {value.decode() for value, _ in member.client.get_prefix(prefix)}


def assert_linearizable(history: History) -> None:
    """Fail, with the history attached as JSON, unless it is linearizable for a register."""
    ok, explanation = check(history)
    if not ok:
        evidence.attach_json("history.json", json.loads(history.to_json()))
    assert ok, f"expected a linearizable history of the register; {explanation}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
