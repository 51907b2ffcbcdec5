"""The suites pass on a healthy local lab and fail, saying why, on each injected fault.

One real local lab (3 hosts) serves the module; each fault is injected, the relevant
suite is run against the lab's inventory in a separate pytest process, and the fault
is reverted whatever the outcome.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from labs import local_lab, run_pytest

from stackcheck.etcd import client_for
from stackcheck.lab import Lab
from stackcheck.ssh import host_connection
from stackcheck_provisioners import get_provisioner

REPO = Path(__file__).resolve().parent.parent
PREFIX = "/coreos.com/network"

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="a local lab needs root"),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    # Kubernetes faults have their own module (test_kubernetes_suite.py)
    with local_lab(tmp_path_factory.mktemp("faultlab") / "lab", "faults",
                   subnet="10.213.7.0/24", name="flt", kubernetes="false") as built:
        yield built


def run_suite(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """Run suites against the lab's inventory in a fresh pytest process."""
    return run_pytest(lab, "-rfE", "--tb=line", *args)


def sh(lab: Lab, host: str, command: str) -> str:
    result = host_connection(lab, lab.host(host)).run(command)
    assert result.rc == 0, f"{host}: {command}: {result.stderr}"
    return result.stdout


def etcd_kv(lab: Lab):
    assert lab.etcd is not None
    return client_for(lab.etcd, lab.etcd.endpoints[0])


def lease_key(lab: Lab, host: str) -> tuple[str, dict]:
    address = lab.host(host).address
    for value, meta in etcd_kv(lab).get_prefix(f"{PREFIX}/subnets/"):
        data = json.loads(value)
        if data.get("PublicIP") == address:
            key = meta["key"].decode() if isinstance(meta["key"], bytes) else meta["key"]
            return key, data
    raise LookupError(f"no lease for {host}")


@contextlib.contextmanager
def etcd_value(lab: Lab, key: str, value: str | None) -> Iterator[None]:
    """Set (or delete, with None) an etcd key for the duration, then restore it."""
    client = etcd_kv(lab)
    before = client.get(key)
    try:
        client.put(key, value) if value is not None else client.delete(key)
        yield
    finally:
        client.put(key, before[0].decode()) if before else client.delete(key)


def subnet_of(lab: Lab, host: str) -> str:
    key, _ = lease_key(lab, host)
    return key.rsplit("/", 1)[-1].replace("-", "/")


def failed_checks(result: subprocess.CompletedProcess[str]) -> set[str]:
    """Node ids of the FAILED/ERROR lines of the run's short summary (``-rfE``)."""
    return set(re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, re.MULTILINE))


def counts(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """``{"passed": 40, "failed": 1, ...}`` from the run's last line."""
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", last)}


def test_suites_pass_on_a_healthy_lab(lab: Lab) -> None:
    result = run_suite(lab, "-n", "2", "--dist", "loadgroup", "suites")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def test_deleted_route_is_caught(lab: Lab) -> None:
    subnet = subnet_of(lab, "h2")
    gateway = subnet.split("/")[0]
    sh(lab, "h1", f"ip route del {subnet} dev flannel.1")
    try:
        result = run_suite(lab, "suites/flannel/test_host_plumbing.py")
    finally:
        sh(lab, "h1", f"ip route replace {subnet} via {gateway} dev flannel.1 onlink")
    assert result.returncode == 1
    assert f"h1: peer h2: expected route {subnet} via {gateway} dev flannel.1 onlink" in (
        result.stdout)


def test_wrong_fdb_mac_is_caught(lab: Lab) -> None:
    _, lease = lease_key(lab, "h2")
    mac, dst = lease["BackendData"]["VtepMAC"], lease["PublicIP"]
    sh(lab, "h1", f"bridge fdb del {mac} dev flannel.1 dst {dst} self")
    sh(lab, "h1", f"bridge fdb append 02:00:00:00:be:ef dev flannel.1 dst {dst} self permanent")
    try:
        result = run_suite(lab, "suites/flannel")
    finally:
        sh(lab, "h1", f"bridge fdb del 02:00:00:00:be:ef dev flannel.1 dst {dst} self")
        sh(lab, "h1", f"bridge fdb replace {mac} dev flannel.1 dst {dst} self permanent")
    assert result.returncode == 1
    assert f"h1: peer h2: expected FDB entry {mac.lower()} dst {dst}" in result.stdout
    assert "h1->h2" in result.stdout, "the ping matrix names the failing pair"


def test_overlapping_lease_is_caught(lab: Lab) -> None:
    subnet = subnet_of(lab, "h2")
    overlapping = subnet.split("/")[0].rsplit(".", 1)[0] + ".128-25"
    key = f"{PREFIX}/subnets/{overlapping}"
    value = json.dumps({"PublicIP": lab.host("h2").address, "BackendType": "vxlan",
                        "BackendData": {"VtepMAC": "02:00:00:00:00:01"}})
    with etcd_value(lab, key, value):
        result = run_suite(lab, "suites/flannel/test_data_model.py")
    assert result.returncode == 1
    assert "expected disjoint leases; these overlap" in result.stdout
    assert overlapping in result.stdout


def test_wrong_vni_is_caught(lab: Lab) -> None:
    """A config VNI that no host runs (every lease and flannel.1 say 1) fails the config
    check once; the per-host checks describe what the hosts run and pass (issue 28)."""
    config = json.loads(etcd_kv(lab).get(f"{PREFIX}/config")[0])
    config["Backend"]["VNI"] = 7
    with etcd_value(lab, f"{PREFIX}/config", json.dumps(config)):
        result = run_suite(lab, "suites/flannel/test_data_model.py",
                           "suites/flannel/test_host_plumbing.py")
    assert result.returncode == 1
    assert failed_checks(result) == {
        "suites/flannel/test_data_model.py::test_network_config_parses"}, result.stdout[-3000:]
    assert "the config says VNI 7, but every host runs VNI 1" in result.stdout


def test_config_backend_disagreeing_with_every_host_is_one_failure(lab: Lab) -> None:
    """Backend "udp" in the config while every host runs vxlan: one failure of the config
    check saying so; the nine per-host checks run against each host's lease and pass."""
    config = json.loads(etcd_kv(lab).get(f"{PREFIX}/config")[0])
    config["Backend"] = {"Type": "udp"}
    with etcd_value(lab, f"{PREFIX}/config", json.dumps(config)):
        result = run_suite(lab, "suites/flannel/test_data_model.py",
                           "suites/flannel/test_host_plumbing.py")
    assert result.returncode == 1
    assert failed_checks(result) == {
        "suites/flannel/test_data_model.py::test_network_config_parses"}, result.stdout[-3000:]
    assert "the config says Backend 'udp', but every host runs 'vxlan'" in result.stdout
    assert "not vxlan" not in result.stdout and counts(result).get("skipped", 0) <= 1


def test_lease_with_wrong_public_ip_is_caught(lab: Lab) -> None:
    key, lease = lease_key(lab, "h2")
    lease["PublicIP"] = "10.213.7.99"
    with etcd_value(lab, key, json.dumps(lease)):
        result = run_suite(lab, "suites/flannel/test_data_model.py")
    assert result.returncode == 1
    assert "expected a lease for every flannel host; none for ['h2']" in result.stdout
    assert "leases of hosts not in the inventory" in result.stdout


@pytest.mark.skipif(shutil.which("iptables") is None, reason="iptables is not installed")
def test_blocked_vxlan_port_shows_in_the_ping_matrix(lab: Lab) -> None:
    """The ping matrix fails exactly the two pairs; the path MTU check says "no path" for
    them, not "MTU"."""
    rule = f"INPUT -p udp --dport 8472 -s {lab.host('h1').address} -j DROP"
    sh(lab, "h2", f"iptables -I {rule}")
    try:
        result = run_suite(lab, "suites/flannel/test_datapath.py")
    finally:
        sh(lab, "h2", f"iptables -D {rule}")
    assert result.returncode == 1
    assert counts(result) == {"failed": 2}, result.stdout[-3000:]
    matrix = re.search(r"pod pairs \([^)]*\) to ping; \d+ failed: (.*)", result.stdout)
    assert matrix, result.stdout[-3000:]
    assert set(matrix.group(1).split(", ")) == {"h1->h2", "h2->h1"}, result.stdout[-2000:]
    mtu = re.search(r"2 of 6 pairs failed: (.*)", result.stdout)
    assert mtu, result.stdout[-3000:]
    assert mtu.group(1).startswith("no path: a plain ping gets no reply"), mtu.group(1)
    assert set(re.findall(r"h\d->h\d", mtu.group(1))) == {"h1->h2", "h2->h1"}
    assert "MTU:" not in mtu.group(1)


def test_stale_lease_fails_only_the_lease_check(lab: Lab) -> None:
    """A lease of a host not in the inventory: the lease check says so; every host's route,
    neighbour and FDB check (and everything else) still passes."""
    key = f"{PREFIX}/subnets/10.244.200.0-24"
    value = json.dumps({"PublicIP": "10.213.7.99", "BackendType": "vxlan",
                        "BackendData": {"VtepMAC": "02:00:00:00:00:99"}})
    with etcd_value(lab, key, value):
        result = run_suite(lab, "-n", "2", "-m", "not disruptive", "suites/flannel",
                           "suites/docker")
    assert result.returncode == 1, result.stdout[-3000:]
    assert failed_checks(result) == {"suites/flannel/test_data_model.py::test_no_stale_leases"}
    assert counts(result).get("failed") == 1 and "error" not in counts(result)
    assert f"leases of hosts not in the inventory: {key} (no ttl)" in result.stdout


def test_overlay_mtu_disagreeing_with_subnet_env_is_caught(lab: Lab) -> None:
    """flannel.1 at 1400 on h2 while subnet.env says 1450: h2's device check fails (no other
    host's), and the path MTU check blames h2 as a source with an MTU verdict."""
    sh(lab, "h2", "ip link set dev flannel.1 mtu 1400")
    try:
        result = run_suite(lab, "suites/flannel/test_host_plumbing.py",
                           "suites/flannel/test_datapath.py")
    finally:
        sh(lab, "h2", "ip link set dev flannel.1 mtu 1450")
    assert result.returncode == 1
    assert failed_checks(result) == {
        "suites/flannel/test_host_plumbing.py::test_overlay_device_mtu_is_the_subnet_env_mtu[h2]",
        "suites/flannel/test_datapath.py::test_path_mtu_is_the_flannel_mtu",
    }, result.stdout[-3000:]
    assert "h2: flannel.1 MTU 1400, subnet.env says FLANNEL_MTU=1450" in result.stdout
    mtu = re.search(r"2 of 6 pairs failed: (.*)", result.stdout)
    assert mtu, result.stdout[-3000:]
    assert mtu.group(1).startswith("MTU: a plain ping answers, a 1422-byte ping with DF "
                                   "(FLANNEL_MTU 1450 - 28) does not"), mtu.group(1)
    assert set(re.findall(r"h\d->h\d", mtu.group(1))) == {"h2->h1", "h2->h3"}


def test_stopped_majority_is_caught(lab: Lab) -> None:
    provisioner = get_provisioner("local")
    stopped = [lab.host("h1"), lab.host("h2")]
    for host in stopped:
        assert provisioner.service(lab, host, "etcd", "stop").ok
    try:
        result = run_suite(lab, "suites/etcd/test_health.py::test_every_endpoint_is_healthy")
    finally:
        for host in stopped:
            provisioner.service(lab, host, "etcd", "start")
    assert result.returncode == 1
    assert "expected every endpoint healthy with a leader" in result.stdout
    assert lab.etcd is not None
    assert lab.etcd.endpoints[0] in result.stdout
