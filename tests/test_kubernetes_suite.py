"""The Kubernetes suite passes on a healthy local cluster and catches each injected fault."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from labs import local_lab, run_pytest

from stackcheck.lab import Lab
from stackcheck.waits import wait_for
from stackcheck_provisioners import get_provisioner

REPO = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="a local lab needs root"),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with local_lab(tmp_path_factory.mktemp("k8slab") / "lab", "k8sfaults",
                   subnet="10.213.11.0/24", name="k8h", kubernetes="true") as built:
        if built.kubernetes is None:
            pytest.skip(f"the local lab has no Kubernetes here: {built.environment}")
        yield built


@pytest.fixture(scope="module")
def core(lab: Lab) -> client.CoreV1Api:
    assert lab.kubernetes is not None
    return client.CoreV1Api(config.new_client_from_config(str(lab.kubernetes.kubeconfig)))


def run_suite(lab: Lab, *args: str, pod_timeout: int = 90) -> subprocess.CompletedProcess[str]:
    return run_pytest(lab, "-rfE", "--tb=line", *args, timeout=900,
                      env={"STACKCHECK_POD_TIMEOUT": str(pod_timeout)})


def ready(core: client.CoreV1Api, node: str) -> bool:
    try:
        conditions = core.read_node(node).status.conditions or []
    except client.ApiException:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def kubelet(lab: Lab, host: str, action: str) -> None:
    assert get_provisioner("local").service(lab, lab.host(host), "kubelet", action).ok


def test_suite_passes_on_a_healthy_cluster(lab: Lab) -> None:
    result = run_suite(lab, "-n", "2", "--dist", "loadgroup", "--tb=short", "suites/kubernetes")
    lines = result.stdout.splitlines()
    why = [line for line in lines if line.startswith(("E ", "FAILED", "ERROR"))]
    assert result.returncode == 0, "\n".join(why[:40]) or result.stdout[-3000:]


def test_taint_left_on_a_node_is_caught(lab: Lab, core: client.CoreV1Api) -> None:
    taint = {"key": "leftover", "value": "x", "effect": "NoSchedule"}
    core.patch_node("h2", {"spec": {"taints": [taint]}})
    try:
        result = run_suite(lab, "suites/kubernetes/test_preflight.py")
    finally:
        core.patch_node("h2", {"spec": {"taints": None}})
    assert result.returncode == 1
    assert "expected every node host to accept pods; blocked: {'h2': {'taints': " \
           "['leftover=x:NoSchedule']" in result.stdout


def test_stopped_scheduler_is_named_by_the_preflight_and_blocks_scheduling(lab: Lab) -> None:
    provisioner = get_provisioner("local")
    assert provisioner.service(lab, lab.host("h1"), "kube-scheduler", "stop").ok
    try:
        result = run_suite(lab, "suites/kubernetes/test_scheduling.py::"
                                "test_deployment_spreads_over_every_schedulable_node",
                           pod_timeout=20)
    finally:
        assert provisioner.service(lab, lab.host("h1"), "kube-scheduler", "start").ok
    assert result.returncode == 1
    # the preflight names the cause once; the check is blocked at once, not after a timeout
    assert "no pod gets a node: the scheduler is not running" in result.stdout, result.stdout
    assert "blocked: needs scheduler" in result.stdout, result.stdout


def test_not_ready_node_is_caught(lab: Lab, core: client.CoreV1Api) -> None:
    kubelet(lab, "h3", "stop")
    try:
        wait_for(lambda: not ready(core, "h3"), timeout=120, interval=2,
                 what="h3 to turn NotReady after its kubelet stopped")
        result = run_suite(lab, "suites/kubernetes/test_preflight.py")
    finally:
        kubelet(lab, "h3", "start")
        wait_for(lambda: ready(core, "h3"), timeout=120, interval=1, what="h3 Ready again")
    assert result.returncode == 1
    assert "expected every node Ready; not ready: {'h3'" in result.stdout


def test_missing_node_is_caught(lab: Lab, core: client.CoreV1Api) -> None:
    kubelet(lab, "h3", "stop")
    try:
        core.delete_node("h3")
        result = run_suite(lab, "suites/kubernetes/test_preflight.py")
    finally:
        kubelet(lab, "h3", "start")
        wait_for(lambda: ready(core, "h3"), timeout=120, interval=1, what="h3 registered again")
    assert result.returncode == 1
    assert "expected a Node for every host with the node role; missing ['h3']" in result.stdout
