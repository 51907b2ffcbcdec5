"""etcd consistency: members converge and agree on the data."""

import shutil
import time
import uuid

import allure
import pytest

from stackcheck.etcd import hashkv
from stackcheck.etcd.cluster import Member, problem, settles, status_of
from stackcheck.lab import Lab
from stackcheck_reports import evidence

#: they compare every member with the others: a member the preflight found down blocks them
pytestmark = pytest.mark.needs_every_member("etcd")

#: s: members of a healthy cluster converge in milliseconds; a loaded machine may lag
CONVERGE = 30.0


def applied_indexes(cluster: list[Member]) -> dict[str, int]:
    return {m.host.name: int((status_of(m) or {}).get("raftAppliedIndex", -1)) for m in cluster}


@allure.feature("consistency")
@allure.id("etcd-applied-index-converges")
def test_applied_indexes_converge(cluster: list[Member]) -> None:
    """Every member applies at least as far as the furthest member was after a write.

    (Equal indexes at one instant are not required: other checks may write meanwhile.)
    """
    key = f"stackcheck/converge/{uuid.uuid4().hex}"
    errors = {}
    for member in cluster:  # the write only makes the indexes move; any member will do
        try:
            member.client.put(key, "x")
            break
        except Exception as exc:  # noqa: BLE001 - try the next member
            errors[member.label] = problem(exc)
    else:
        pytest.fail(f"expected a write through some member to succeed; saw {errors}")
    target = max(applied_indexes(cluster).values())
    seen: dict[str, int] = {}

    def converged() -> bool:
        seen.clear()
        seen.update(applied_indexes(cluster))
        return min(seen.values()) >= target

    settles(converged, CONVERGE, "applied indexes to converge", describe=lambda: str(seen))
    behind = {name: index for name, index in seen.items() if index < target}
    assert not behind, (
        f"expected every member to apply up to raft index {target} within {CONVERGE:g}s; "
        f"behind: {behind} (-1 = no answer); all: {seen}"
    )


def hashkv_each(lab: Lab, revision: int) -> dict[str, int | str]:
    """HashKV at ``revision`` per endpoint, or what went wrong there."""
    assert lab.etcd is not None
    out: dict[str, int | str] = {}
    for endpoint in lab.etcd.endpoints:
        try:
            out.update(hashkv(lab.etcd.model_copy(update={"endpoints": [endpoint]}), revision))
        except Exception as exc:  # noqa: BLE001 - reported per endpoint
            out[endpoint] = problem(exc)  # one line
    return out


def per_endpoint(values: dict[str, int | str]) -> str:
    """``https://…:2379: 123; https://…:2379: <why not>`` (one line each value)."""
    return "; ".join(f"{endpoint}: {value}" for endpoint, value in values.items())


@allure.feature("consistency")
@allure.id("etcd-hashkv-equal")
def test_hashkv_is_equal_on_every_member(lab: Lab, cluster: list[Member]) -> None:
    if shutil.which("etcdctl") is None:
        pytest.skip("etcdctl is not installed here (Debian etcd-client): HashKV needs gRPC")
    statuses = {m.host.name: status_of(m) for m in cluster}
    silent = [name for name, s in statuses.items() if s is None]
    assert not silent, (
        f"HashKV not compared: {', '.join(silent)} do(es) not answer status (a member that "
        f"does not answer can never match; the health checks say why)"
    )
    revisions = [int(s["header"]["revision"]) for s in statuses.values() if s]
    revision = max(revisions)  # a member that never reaches it is as wrong as a different hash
    hashes: dict[str, int | str] = {}

    def equal() -> bool:
        hashes.clear()
        hashes.update(hashkv_each(lab, revision))
        return len(set(hashes.values())) == 1 and all(isinstance(h, int) for h in hashes.values())

    settles(equal, CONVERGE, "one HashKV on every member",
            describe=lambda: per_endpoint(hashes))
    evidence.attach_json("hashkv per endpoint", hashes)
    assert len(set(hashes.values())) == 1 and all(isinstance(h, int) for h in hashes.values()), (
        f"expected one HashKV at revision {revision} on every endpoint within {CONVERGE:g}s; "
        f"saw {per_endpoint(hashes)}"
    )


@allure.feature("consistency")
@allure.id("etcd-write-read-everywhere")
def test_write_through_one_member_reads_linearizably_everywhere(cluster: list[Member]) -> None:
    for writer in cluster:
        key = f"stackcheck/rw/{writer.host.name}/{uuid.uuid4().hex}"
        value = f"written via {writer.host.name} at {time.time_ns()}"
        failed = None
        try:
            writer.client.put(key, value)
        except Exception as exc:  # noqa: BLE001 - reported with the member's name
            failed = problem(exc)
        if failed:  # outside the except: no chain of library tracebacks in the report
            pytest.fail(f"expected a write through {writer.label} to succeed; {failed}")
        seen: dict[str, str | None] = {}
        for reader in cluster:
            try:
                got = reader.client.get(key)  # linearizable by default
                seen[reader.host.name] = got[0].decode() if got else None
            except Exception as exc:  # noqa: BLE001 - reported with the member's name
                seen[reader.host.name] = f"<read failed: {problem(exc)}>"
        wrong = {name: v for name, v in seen.items() if v != value}
        assert not wrong, (
            f"wrote {key}={value!r} through {writer.host.name}; expected every member to "
            f"read it linearizably; these read otherwise: {wrong}"
        )
        writer.client.delete(key)
