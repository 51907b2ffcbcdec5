"""flannel's Kubernetes mode end to end: a local lab built with ``flannel=kube`` (2 hosts,
podCIDRs from the controller-manager, lease data in Node annotations, the ConfigMap, nothing
in etcd) passes the flannel suite, and two faults are each caught by one check in one line:
a Node's ``backend-data`` annotation wrong, and a lease annotation of a Node not in the
inventory. Each fault is undone whatever the outcome."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from labs import local_lab, run_pytest

from stackcheck.flannel import kube as km
from stackcheck.kubernetes import Kube, connect
from stackcheck.lab import Lab

REPO = Path(__file__).resolve().parent.parent
LAB_NAME = "fkl"
SUBNET = "10.225.200.0/24"
GONE = "gone-node"

pytestmark = [
    pytest.mark.lab,
    pytest.mark.xdist_group("flannel-kube-lab"),
    pytest.mark.skipif(os.geteuid() != 0, reason="a local lab needs root"),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with local_lab(tmp_path_factory.mktemp("fkl") / "lab", "fkl", hosts=2,
                   name=LAB_NAME, subnet=SUBNET, flannel="kube") as built:
        yield built


@pytest.fixture(scope="module")
def kube(lab: Lab) -> Kube:
    assert lab.kubernetes is not None, f"the lab came up without Kubernetes: {lab.environment}"
    return connect(str(lab.kubernetes.kubeconfig))


def run_suite(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return run_pytest(lab, "-rfEs", "--tb=line", *args)


def failed_checks(result: subprocess.CompletedProcess[str]) -> set[str]:
    return set(re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, re.MULTILINE))


DATA_AND_HOSTS = ("suites/flannel/test_data_model.py", "suites/flannel/test_host_plumbing.py")


def test_the_lab_keeps_flannel_in_kubernetes_only(lab: Lab, kube: Kube) -> None:
    from stackcheck.etcd import client_for

    assert lab.etcd is not None
    assert not client_for(lab.etcd, lab.etcd.endpoints[0]).get_prefix("/coreos.com/network/")
    cm = kube.core.read_namespaced_config_map(km.CONFIGMAP, "kube-flannel")
    assert json.loads(cm.data[km.NET_CONF])["Network"] == "10.244.0.0/16"
    for node in kube.core.list_node().items:
        lease = km.lease_from_node(node.metadata.name, node.metadata.annotations,
                                   [node.spec.pod_cidr])
        assert lease.vtep_mac and lease.public_ip.startswith("10.225.200.")
    assert lab.environment["flannel_mode"] == "kube"


def test_the_flannel_suite_passes(lab: Lab) -> None:
    result = run_suite(lab, "suites/flannel")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "flanneld runs outside Kubernetes (flannel.daemonset is empty)" in result.stdout


@contextlib.contextmanager
def annotation(kube: Kube, node: str, key: str, value: str) -> Iterator[None]:
    before = kube.core.read_node(node).metadata.annotations.get(key)
    kube.core.patch_node(node, {"metadata": {"annotations": {key: value}}})
    try:
        yield
    finally:
        kube.core.patch_node(node, {"metadata": {"annotations": {key: before}}})


def test_a_wrong_backend_data_annotation_is_caught(lab: Lab, kube: Kube) -> None:
    notes = kube.core.read_node("h2").metadata.annotations
    real_mac = json.loads(notes[km.BACKEND_DATA])["VtepMAC"]
    wrong = json.dumps({"VNI": 1, "VtepMAC": "02:00:00:00:be:ef"}, separators=(",", ":"))
    with annotation(kube, "h2", km.BACKEND_DATA, wrong):
        result = run_suite(lab, *DATA_AND_HOSTS)
    assert result.returncode == 1, result.stdout[-3000:]
    assert failed_checks(result) == {
        "suites/flannel/test_data_model.py::test_leases_describe_their_hosts"
    }, result.stdout[-3000:]
    assert (f"h2: Node h2 backend data says VtepMAC 02:00:00:00:be:ef but flannel.1 has "
            f"{real_mac}") in result.stdout


@contextlib.contextmanager
def gone_node(kube: Kube) -> Iterator[str]:
    """A Node not in the inventory, with flannel's lease annotations and a podCIDR."""
    notes = {km.BACKEND_TYPE: "vxlan", km.PUBLIC_IP: "10.225.200.99",
             km.BACKEND_DATA: '{"VNI":1,"VtepMAC":"02:00:00:00:00:99"}',
             km.KUBE_SUBNET_MANAGER: "true"}
    kube.core.create_node({"metadata": {"name": GONE, "annotations": notes}})
    try:
        deadline = time.monotonic() + 20
        while not (cidr := kube.core.read_node(GONE).spec.pod_cidr):
            assert time.monotonic() < deadline, "the controller-manager gave no podCIDR in 20 s"
            time.sleep(0.2)
        yield cidr
    finally:
        kube.core.delete_node(GONE)


def test_a_lease_of_a_node_not_in_the_inventory_is_caught(lab: Lab, kube: Kube) -> None:
    with gone_node(kube) as cidr:
        result = run_suite(lab, *DATA_AND_HOSTS)
    assert result.returncode == 1, result.stdout[-3000:]
    assert failed_checks(result) == {
        "suites/flannel/test_data_model.py::test_no_stale_leases"
    }, result.stdout[-3000:]
    assert (f"flannel leases of nodes not in the inventory: Node {GONE} ({cidr}, public-ip "
            "10.225.200.99)") in result.stdout


def test_a_config_disagreeing_with_every_host_is_one_failure(lab: Lab, kube: Kube) -> None:
    """Backend "udp" in net-conf.json while every host runs vxlan (issue 28): the config check
    fails once, saying so; the per-host checks describe the hosts and pass."""
    cm = kube.core.read_namespaced_config_map(km.CONFIGMAP, "kube-flannel")
    before = cm.data[km.NET_CONF]
    udp = km.net_conf({**json.loads(before), "Backend": {"Type": "udp"}})
    kube.core.patch_namespaced_config_map(km.CONFIGMAP, "kube-flannel",
                                          {"data": {km.NET_CONF: udp}})
    try:
        result = run_suite(lab, *DATA_AND_HOSTS)
    finally:
        kube.core.patch_namespaced_config_map(km.CONFIGMAP, "kube-flannel",
                                              {"data": {km.NET_CONF: before}})
    assert result.returncode == 1, result.stdout[-3000:]
    assert failed_checks(result) == {
        "suites/flannel/test_data_model.py::test_network_config_parses"
    }, result.stdout[-3000:]
    assert "the config says Backend 'udp', but every host runs 'vxlan'" in result.stdout
