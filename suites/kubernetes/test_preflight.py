"""Kubernetes preflight: every node host is a Ready Node; the control plane is ready."""

import allure
import pytest

from stackcheck.kubernetes import Kube
from stackcheck.kubernetes.taints import blocking_taints
from stackcheck.lab import Lab

# these report the control plane's and the nodes' own health: never blocked by them
pytestmark = [allure.feature("preflight"), pytest.mark.owns("kubernetes"),
              pytest.mark.owns("kubelet")]


@allure.id("kubernetes-api-ready")
def test_api_server_is_ready(kube: Kube) -> None:
    request = kube.api.param_serialize("GET", "/readyz", auth_settings=["BearerToken"])
    response = kube.api.call_api(*request, _request_timeout=30)
    body = response.read()
    assert response.status == 200, (
        f"expected /readyz to answer 200; saw {response.status}: {body!r}"
    )


@allure.id("kubernetes-nodes-ready")
def test_every_node_host_is_a_ready_node(lab: Lab, kube: Kube) -> None:
    nodes = {n.metadata.name: n for n in kube.core.list_node().items}
    expected = [h.name for h in lab.hosts_with("node")]
    missing = [name for name in expected if name not in nodes]
    assert not missing, f"expected a Node for every host with the node role; missing {missing}"
    not_ready = {}
    for name in expected:
        ready = next((c for c in nodes[name].status.conditions if c.type == "Ready"), None)
        if ready is None or ready.status != "True":
            not_ready[name] = f"{ready.reason}: {ready.message}" if ready else "no Ready condition"
    assert not not_ready, f"expected every node Ready; not ready: {not_ready}"


@allure.id("kubernetes-system-pods-running")
def test_kube_system_pods_are_running(kube: Kube) -> None:
    pods = kube.core.list_namespaced_pod("kube-system").items
    if not pods:
        pytest.skip("kube-system runs no pods in this lab (control plane runs outside pods)")
    bad = {p.metadata.name: p.status.phase for p in pods
           if p.status.phase not in ("Running", "Succeeded")}
    assert not bad, f"expected kube-system pods Running; saw {bad}"


@allure.id("kubernetes-nodes-schedulable")
def test_every_node_host_is_schedulable(lab: Lab, kube: Kube) -> None:
    """A node host must take pods: no cordon, no NoSchedule/NoExecute taint left behind.

    A control-plane host may keep kubeadm's control-plane taint (``master`` before v1.25,
    ``control-plane`` since)."""
    nodes = {n.metadata.name: n for n in kube.core.list_node().items}
    blocked = {}
    for host in lab.hosts_with("node"):
        node = nodes.get(host.name)
        if node is None:
            continue  # reported by test_every_node_host_is_a_ready_node
        taints = blocking_taints(node, control_plane=host.has_role("master"))
        if taints or node.spec.unschedulable:
            blocked[host.name] = {"taints": taints, "cordoned": bool(node.spec.unschedulable)}
    assert not blocked, f"expected every node host to accept pods; blocked: {blocked}"
