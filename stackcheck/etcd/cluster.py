"""What the etcd checks read from a cluster: members, their status, their health (no pytest;
the suite's "healthy before a scenario" guard is ``suites/etcd/scenario.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from etcd3gw.client import Etcd3Client

from stackcheck.etcd import client_for, endpoint_host, error_text, hex_id, leader_id, member_id
from stackcheck.lab import EtcdAccess, Host, Lab
from stackcheck.waits import WaitTimeout, wait_for

#: s: a health probe's client timeout (a poll of 3 members takes at most ~3x this)
QUICK = 1.5


@dataclass
class Member:
    host: Host
    endpoint: str
    client: Etcd3Client
    #: a client that gives up after QUICK s, for health probes
    quick: Etcd3Client | None = None

    @property
    def label(self) -> str:
        """How messages name a member: ``h2 (https://10.0.0.12:2379)``."""
        return f"{self.host.name} ({self.endpoint})"


def members(lab: Lab, timeout: float = 5.0) -> list[Member]:
    """The inventory's etcd endpoints, each paired with the host that has its address."""
    assert lab.etcd is not None
    return members_at(lab.etcd, lab.hosts, timeout)


def members_at(access: EtcdAccess, hosts: Iterable[Host], timeout: float = 5.0) -> list[Member]:
    """``access``'s endpoints, each paired with the one of ``hosts`` that has its address."""
    by_address = {h.address: h for h in hosts}
    out = []
    for endpoint in access.endpoints:
        host = by_address.get(endpoint_host(endpoint))
        if host is None:
            raise LookupError(f"etcd endpoint {endpoint} is not the address of any host")
        out.append(Member(host, endpoint, client_for(access, endpoint, timeout),
                          client_for(access, endpoint, min(timeout, QUICK))))
    return out


class NoAnswer(LookupError):
    """No member of the cluster answered."""


@dataclass(frozen=True)
class Listed:
    """One entry of etcd's member list (an added but never started member has no name and no
    client URLs)."""

    id: str  # decimal, as the gateway says it
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]

    @classmethod
    def from_gateway(cls, item: dict) -> Listed:
        return cls(str(item.get("ID", "")), str(item.get("name", "") or ""),
                   tuple(item.get("peerURLs", []) or []), tuple(item.get("clientURLs", []) or []))

    @property
    def started(self) -> bool:
        return bool(self.name or self.client_urls)

    @property
    def address(self) -> str:
        """The peer address (``10.0.0.14``), or ``?`` when it lists no peer URL."""
        return endpoint_host(self.peer_urls[0]) if self.peer_urls else "?"

    def describe(self) -> str:
        """``10.0.0.14 (id 8e9e05c52164694d, unstarted, https://10.0.0.14:2380)``."""
        state = "" if self.started else ", unstarted"
        peers = f", {', '.join(self.peer_urls)}" if self.peer_urls else ""
        return f"{self.address} (id {hex_id(self.id)}{state}{peers})"


@dataclass(frozen=True)
class Membership:
    """The member list as one member told it: size, quorum and tolerance come from it, not
    from the inventory (a member added and never started counts: etcd counts it)."""

    members: tuple[Listed, ...]
    told_by: str  # the host whose member list this is

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def quorum(self) -> int:
        return self.size // 2 + 1

    @property
    def tolerance(self) -> int:
        return max(0, (self.size - 1) // 2)

    @property
    def unstarted(self) -> list[Listed]:
        return [m for m in self.members if not m.started]

    def outside(self, cluster: list[Member]) -> list[Listed]:
        """Listed members at no address of ``cluster`` (the inventory's members)."""
        known = {m.host.address for m in cluster}
        return [m for m in self.members if m.address not in known]

    def after(self, down: int) -> str:
        """``2 of 4 members down, quorum (3) lost`` / ``1 of 3 members down, quorum (2) kept``."""
        kept = "kept" if self.size - down >= self.quorum else "lost"
        return f"{down} of {self.size} members down, quorum ({self.quorum}) {kept}"


def differences(listed: list[Listed], expected: dict[str, str]) -> list[str]:
    """How a member list differs from the inventory's etcd hosts (address -> host name): each
    extra or unstarted member named with its id and peer URL, each missing host by name."""
    out = []
    at = {m.address: m for m in listed}
    for member in listed:
        if member.address not in expected:
            out.append(f"extra member {member.describe()}")
        elif not member.started:
            out.append(f"{expected[member.address]} is listed but unstarted: "
                       f"{member.describe()}")
        elif member.name not in (expected[member.address], member.address):
            out.append(f"the member at {member.address} is named {member.name!r}, expected "
                       f"{expected[member.address]!r}")
    out += [f"{name} ({address}) is not a member" for address, name in expected.items()
            if address not in at]
    return out


def membership(cluster: list[Member]) -> Membership:
    """The member list told by the first member that answers (raises if none does)."""
    __tracebackhide__ = True
    errors = {}
    for m in cluster:
        try:
            listed = (m.quick or m.client).members()
        except Exception as exc:  # noqa: BLE001 - ask the next member
            errors[m.host.name] = problem(exc)
            continue
        return Membership(tuple(Listed.from_gateway(item) for item in listed), m.host.name)
    raise NoAnswer("no member answers the member list: "
                      + "; ".join(f"{name}: {why}" for name, why in errors.items()))


def status_of(member: Member) -> dict | None:
    try:
        return member.client.status()
    except Exception:  # noqa: BLE001 - a stopped member answers nothing
        return None


def problem(exc: Exception) -> str:
    """An error as a short phrase (see :func:`stackcheck.etcd.error_text`)."""
    return error_text(exc)


def names_by_id(cluster: list[Member], statuses: dict[str, dict | None] | None = None
                ) -> dict[str, str]:
    """Member id (decimal, as the gateway says it) -> ``h2 (8e9e05c52164694d)``.

    Each answering member names itself; the member list of one that answers names the rest.
    """
    statuses = statuses if statuses is not None else {m.host.name: status_of(m)
                                                      for m in cluster}
    out = {}
    for m in cluster:
        status = statuses.get(m.host.name)
        if status:
            out[member_id(status)] = f"{m.host.name} ({hex_id(member_id(status))})"
    if len(out) < len(cluster):
        for m in cluster:
            try:
                listed = m.client.members()
            except Exception:  # noqa: BLE001 - try the next member
                continue
            for item in listed:
                ident = str(item.get("ID", ""))
                out.setdefault(ident, f"{item.get('name') or '?'} ({hex_id(ident)})")
            break
    return out


def name_of(ident: str, names: dict[str, str]) -> str:
    """A member id as a name: ``h2 (8e9e…)``; ``none`` for 0; the hex id if unknown."""
    if str(ident) == "0":
        return "none"
    return names.get(str(ident), f"unknown member {hex_id(ident)}")


def leader(cluster: list[Member]) -> tuple[Member, dict]:
    """The member every reachable member names as leader (raises if they disagree)."""
    __tracebackhide__ = True
    views = {m.host.name: s for m in cluster if (s := status_of(m))}
    leaders = {leader_id(s) for s in views.values()}
    if len(leaders) != 1 or "0" in leaders:
        names = names_by_id(cluster, views)
        named = {host: name_of(leader_id(s), names) for host, s in views.items()}
        raise AssertionError(f"members disagree on the leader or have none: {named}")
    (the_leader,) = leaders
    for m in cluster:
        status = views.get(m.host.name)
        if status and member_id(status) == the_leader:
            return m, status
    raise AssertionError(f"leader {name_of(the_leader, names_by_id(cluster, views))} is not "
                         f"among the reachable members")


def settles(condition: Callable[[], bool], seconds: float, what: str = "the cluster to settle",
            describe: Callable[[], str] | None = None) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass; whether it held in the end.

    An exception from ``condition`` is raised at once (a check must not mistake it for a
    pass); the wait is recorded like every other.
    """
    __tracebackhide__ = True
    try:
        wait_for(condition, timeout=seconds, interval=0.2, what=what, retry_errors=False,
                 describe=describe)
    except WaitTimeout:
        return False
    return True


def health(cluster: list[Member]) -> dict[str, str]:
    """Per member: ``ok (leader h1 (…), term 4)``, or what is wrong with it."""
    statuses, out = {}, {}
    for m in cluster:
        try:
            statuses[m.host.name] = (m.quick or m.client).status()
        except Exception as exc:  # noqa: BLE001 - reported per member
            statuses[m.host.name] = None
            why = problem(exc)
            out[m.host.name] = why if why.startswith("does not answer") else (
                f"does not answer: {why}")
    names = names_by_id(cluster, statuses)
    leaders = {leader_id(s) for s in statuses.values() if s}
    for m in cluster:
        status = statuses[m.host.name]
        if status is None:
            continue
        named = leader_id(status)
        term = status.get("raftTerm", "?")
        if named == "0":
            out[m.host.name] = f"answers but has no leader (term {term})"
            continue
        if len(leaders) > 1:
            out[m.host.name] = f"names leader {name_of(named, names)}, others differ"
            continue
        try:
            (m.quick or m.client).get("stackcheck/health")  # linearizable: needs quorum
        except Exception as exc:  # noqa: BLE001 - reported per member
            out[m.host.name] = (f"leader {name_of(named, names)}, but a linearizable read "
                                f"fails: {problem(exc)}")
            continue
        out[m.host.name] = f"ok (leader {name_of(named, names)}, term {term})"
    return {m.host.name: out[m.host.name] for m in cluster}


def is_healthy(summary: dict[str, str]) -> bool:
    return all(state.startswith("ok ") for state in summary.values())


def healthy(cluster: list[Member]) -> bool:
    """Every member answers, all agree on one leader, and a linearizable read works."""
    return is_healthy(health(cluster))


def summary_text(summary: dict[str, str]) -> str:
    return "; ".join(f"{name}: {state}" for name, state in summary.items())


def wait_healthy(cluster: list[Member], timeout: float, what: str) -> None:
    """Wait for a healthy cluster; the timeout says per member what it last saw."""
    __tracebackhide__ = True
    seen: dict[str, str] = {}

    def ok() -> bool:
        seen.clear()
        seen.update(health(cluster))
        return is_healthy(seen)

    wait_for(ok, timeout=timeout, what=what, describe=lambda: summary_text(seen))
