"""Scheduling behaviour, after upstream e2e test/e2e/scheduling/predicates.go."""

from __future__ import annotations

from collections import Counter

import allure
import pytest

from stackcheck.kubernetes import Kube, NodeChanges
from stackcheck_reports import evidence

from .objects import (
    container,
    deployment,
    placement,
    pod,
    pods_of,
    wait_running,
    wait_unschedulable,
)

# a scheduled pod may land on any node: every node's runtime and kubelet must answer
pytestmark = [allure.feature("scheduling"), pytest.mark.needs_every_member("runtime"),
              pytest.mark.needs_every_member("kubelet")]
HOSTNAME = "kubernetes.io/hostname"
PER_NODE = 2


def spread(pods: list) -> Counter:
    return Counter(p.spec.node_name for p in pods if p.spec.node_name)


@allure.id("kubernetes-deployment-spreads")
def test_deployment_spreads_over_every_schedulable_node(
    kube: Kube, namespace: str, schedulable_nodes: list[str]
) -> None:
    """k·N replicas with a hard hostname spread constraint land k on each schedulable node.

    The default spreading is only a score: pods that concurrent checks run on a node can
    outweigh it (seen: 4/2/0 on three nodes). A ``DoNotSchedule`` constraint with
    ``maxSkew: 1`` is deterministic, and a node that is Ready yet cannot take pods leaves
    replicas Pending. Node affinity keeps the skew to the schedulable nodes (Kubernetes
    before 1.25 counts tainted nodes in the skew).
    """
    replicas = PER_NODE * len(schedulable_nodes)
    on_schedulable = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": HOSTNAME, "operator": "In", "values": schedulable_nodes}]}]}}}
    even = [{"maxSkew": 1, "topologyKey": HOSTNAME, "whenUnsatisfiable": "DoNotSchedule",
             "labelSelector": {"matchLabels": {"app": "spread"}}}]
    kube.apps.create_namespaced_deployment(namespace, deployment(
        "spread", replicas, affinity=on_schedulable, topologySpreadConstraints=even))
    pods = wait_running(kube, namespace, "spread", replicas)
    evidence.attach_text("placement", str(placement(pods)))
    counts = spread(pods)
    uneven = {n: counts[n] for n in schedulable_nodes if counts[n] != PER_NODE}
    assert not uneven, (
        f"expected {PER_NODE} of {replicas} replicas on each of the {len(schedulable_nodes)} "
        f"schedulable nodes; off on {uneven}; placement {dict(counts)}"
    )


@allure.id("kubernetes-node-selector-lands")
@pytest.mark.disruptive
def test_node_selector_lands_on_the_labelled_node(
    kube: Kube, namespace: str, schedulable_nodes: list[str], node_changes: NodeChanges
) -> None:
    target = schedulable_nodes[-1]
    node_changes.label(target, "stackcheck.io/selected", namespace)
    kube.core.create_namespaced_pod(
        namespace, pod("selected", nodeSelector={"stackcheck.io/selected": namespace}))
    (running,) = wait_running(kube, namespace, "selected", 1)
    assert running.spec.node_name == target, (
        f"expected the pod on {target} (the only node labelled for it); it is on "
        f"{running.spec.node_name}"
    )


@allure.id("kubernetes-unmatched-selector-pending")
def test_unmatched_node_selector_stays_pending(kube: Kube, namespace: str) -> None:
    kube.core.create_namespaced_pod(
        namespace, pod("nowhere", nodeSelector={"stackcheck.io/no-such-label": "x"}))
    messages = wait_unschedulable(kube, namespace, "nowhere")
    assert any("node(s) didn't match" in m or "node selector" in m.lower() for m in messages), (
        f"expected FailedScheduling to blame the node selector; events say {messages}"
    )


@allure.id("kubernetes-taint-repels")
@pytest.mark.disruptive
def test_noschedule_taint_keeps_pods_off_unless_tolerated(
    kube: Kube, namespace: str, schedulable_nodes: list[str], node_changes: NodeChanges
) -> None:
    if len(schedulable_nodes) < 2:
        pytest.skip("needs two schedulable nodes: one tainted, one for the pods")
    tainted = schedulable_nodes[0]
    node_changes.taint(tainted, "stackcheck.io/taint", namespace)
    replicas = PER_NODE * len(schedulable_nodes)
    kube.apps.create_namespaced_deployment(namespace, deployment("intolerant", replicas))
    pods = wait_running(kube, namespace, "intolerant", replicas)
    on_tainted = [p.metadata.name for p in pods if p.spec.node_name == tainted]
    assert not on_tainted, f"pods without a toleration landed on tainted {tainted}: {on_tainted}"
    toleration = {"key": "stackcheck.io/taint", "operator": "Equal", "value": namespace,
                  "effect": "NoSchedule"}
    kube.core.create_namespaced_pod(namespace, pod(
        "tolerant", tolerations=[toleration], nodeSelector={HOSTNAME: tainted}))
    (tolerant,) = wait_running(kube, namespace, "tolerant", 1)
    assert tolerant.spec.node_name == tainted, (
        f"a pod tolerating the taint and selecting {tainted} runs on {tolerant.spec.node_name}"
    )


@allure.id("kubernetes-insufficient-resources-pending")
@pytest.mark.parametrize("resource", ["cpu", "memory"])
def test_request_larger_than_any_node_stays_pending(
    kube: Kube, namespace: str, resource: str
) -> None:
    nodes = kube.core.list_node().items
    if resource == "cpu":
        biggest = max(_millicores(n.status.allocatable["cpu"]) for n in nodes)
        request = f"{biggest + 1000}m"
    else:
        biggest = max(_bytes(n.status.allocatable["memory"]) for n in nodes)
        request = str(biggest + 2**30)
    too_big = pod("toobig")
    too_big["spec"]["containers"] = [container(resources={"requests": {resource: request}})]
    kube.core.create_namespaced_pod(namespace, too_big)
    messages = wait_unschedulable(kube, namespace, "toobig")
    assert any(f"Insufficient {resource}" in m for m in messages), (
        f"expected FailedScheduling with 'Insufficient {resource}' for a {request} request; "
        f"events say {messages}"
    )


@allure.id("kubernetes-anti-affinity-one-per-node")
def test_required_anti_affinity_puts_one_replica_per_node(
    kube: Kube, namespace: str, schedulable_nodes: list[str]
) -> None:
    replicas = len(schedulable_nodes) + 1
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "anti"}}, "topologyKey": HOSTNAME}]}}
    kube.apps.create_namespaced_deployment(
        namespace, deployment("anti", replicas, affinity=anti))
    pods = wait_running(kube, namespace, "anti", len(schedulable_nodes))
    counts = spread(pods)
    assert max(counts.values()) == 1, f"expected at most one replica per node; saw {dict(counts)}"
    every = pods_of(kube, namespace, "anti")
    pending = [p for p in every if p.spec.node_name is None]
    assert len(pending) == 1, (
        f"expected the extra replica (#{replicas}) to stay Pending; pending: "
        f"{[p.metadata.name for p in pending]}, placement {placement(every)}"
    )
    wait_unschedulable(kube, namespace, pending[0].metadata.name)


@allure.id("kubernetes-daemonset-one-per-node")
def test_daemonset_runs_exactly_one_pod_per_schedulable_node(
    kube: Kube, namespace: str, schedulable_nodes: list[str]
) -> None:
    spec = deployment("daemon", 0)["spec"]
    spec.pop("replicas")
    kube.apps.create_namespaced_daemon_set(
        namespace, {"apiVersion": "apps/v1", "kind": "DaemonSet",
                    "metadata": {"name": "daemon"}, "spec": spec})
    pods = wait_running(kube, namespace, "daemon", len(schedulable_nodes))
    counts = spread(pods)
    wrong = {n: counts[n] for n in schedulable_nodes if counts[n] != 1}
    assert not wrong, f"expected one DaemonSet pod per schedulable node; saw {dict(counts)}"


@allure.id("kubernetes-cordon-avoided")
@pytest.mark.disruptive
def test_cordoned_node_gets_no_new_pods_until_uncordoned(
    kube: Kube, namespace: str, schedulable_nodes: list[str], node_changes: NodeChanges
) -> None:
    if len(schedulable_nodes) < 2:
        pytest.skip("needs two schedulable nodes: one cordoned, one for the pods")
    cordoned = schedulable_nodes[0]
    node_changes.cordon(cordoned)
    replicas = PER_NODE * len(schedulable_nodes)
    kube.apps.create_namespaced_deployment(namespace, deployment("avoid", replicas))
    pods = wait_running(kube, namespace, "avoid", replicas)
    on_cordoned = [p.metadata.name for p in pods if p.spec.node_name == cordoned]
    assert not on_cordoned, f"new pods landed on cordoned {cordoned}: {on_cordoned}"
    node_changes.revert()
    kube.core.create_namespaced_pod(namespace, pod("back", nodeSelector={HOSTNAME: cordoned}))
    (back,) = wait_running(kube, namespace, "back", 1)
    assert back.spec.node_name == cordoned, f"after uncordon, {cordoned} should take pods again"


def _millicores(value: str) -> int:
    return int(value[:-1]) if value.endswith("m") else int(float(value) * 1000)


def _bytes(value: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6,
             "G": 10**9}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return int(float(value[: -len(suffix)]) * factor)
    return int(value)
