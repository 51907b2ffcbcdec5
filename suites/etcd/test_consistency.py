"""etcd consistency: members converge and agree on the data."""

import shutil
import time
import uuid

import allure
import pytest

from stackcheck.etcd import hashkv
from stackcheck.lab import Lab
from stackcheck.waits import wait_for
from suites.etcd.cluster import Member, status_of


def applied_indexes(cluster: list[Member]) -> dict[str, int]:
    return {m.host.name: int((status_of(m) or {}).get("raftAppliedIndex", -1)) for m in cluster}


@allure.feature("consistency")
@allure.id("etcd-applied-index-converges")
def test_applied_indexes_converge(cluster: list[Member]) -> None:
    cluster[0].client.put(f"stackcheck/converge/{uuid.uuid4().hex}", "x")
    wait_for(
        lambda: len(set(applied_indexes(cluster).values())) == 1
        and -1 not in applied_indexes(cluster).values(),
        timeout=10, what="raft applied indexes to converge",
        describe=lambda: str(applied_indexes(cluster)),
    )


@allure.feature("consistency")
@allure.id("etcd-hashkv-equal")
def test_hashkv_is_equal_on_every_member(lab: Lab, cluster: list[Member]) -> None:
    if shutil.which("etcdctl") is None:
        pytest.skip("etcdctl is not installed here (Debian etcd-client): HashKV needs gRPC")
    assert lab.etcd is not None
    revision = int(cluster[0].client.status()["header"]["revision"])
    hashes = wait_for(
        lambda: (h := hashkv(lab.etcd, revision)) and len(set(h.values())) == 1 and h,
        timeout=10, what=f"equal hashkv at revision {revision}",
        describe=lambda: str(hashkv(lab.etcd, revision)),
    )
    allure.attach(str(hashes), "hashkv per endpoint", allure.attachment_type.TEXT)


@allure.feature("consistency")
@allure.id("etcd-write-read-everywhere")
def test_write_through_one_member_reads_linearizably_everywhere(cluster: list[Member]) -> None:
    for writer in cluster:
        key = f"stackcheck/rw/{writer.host.name}/{uuid.uuid4().hex}"
        value = f"written via {writer.host.name} at {time.time_ns()}"
        writer.client.put(key, value)
        seen = {}
        for reader in cluster:
            got = reader.client.get(key)  # linearizable by default
            seen[reader.host.name] = got[0].decode() if got else None
        wrong = {name: v for name, v in seen.items() if v != value}
        assert not wrong, (
            f"wrote {key}={value!r} through {writer.host.name}; "
            f"linearizable reads returned {wrong}"
        )
        writer.client.delete(key)
