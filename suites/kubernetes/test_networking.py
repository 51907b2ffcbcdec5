"""Pod networking across nodes: pod-to-pod, and a ClusterIP Service from another node."""

from __future__ import annotations

import contextlib

import allure
import pytest

from stackcheck.kubernetes import Kube, pod_exec
from stackcheck.pingmatrix import failed_pairs, matrix_html, ping_matrix
from stackcheck.waits import NotYet, WaitTimeout, wait_for
from stackcheck_fixtures.pods import KubePod
from stackcheck_reports import evidence

from .objects import container, pod, wait_running

pytestmark = allure.feature("networking")
HOSTNAME = "kubernetes.io/hostname"


def run_in(kube: Kube, namespace: str, name: str, command: str) -> str:
    """Run a shell command in a pod; returns its output (stdout and stderr)."""
    return pod_exec(kube, namespace, name, ["sh", "-c", command], timeout=20)


def one_pod_per_node(kube: Kube, namespace: str, nodes: list[str], app: str, **spec) -> list:
    for index, node in enumerate(nodes):
        manifest = pod(f"{app}-{index}", labels={"app": app, "node": node},
                       nodeSelector={HOSTNAME: node}, **spec)
        kube.core.create_namespaced_pod(namespace, manifest)
    return wait_running(kube, namespace, app, len(nodes))


@allure.id("kubernetes-pod-to-pod")
def test_pods_on_different_nodes_reach_each_other(
    kube: Kube, namespace: str, schedulable_nodes: list[str]
) -> None:
    """Scheduled pods, one per node, ping each other: the flannel suite's matrix, by node."""
    if len(schedulable_nodes) < 2:
        pytest.skip("needs pods on two nodes")
    pods = [KubePod(kube, namespace, p.metadata.name, p.status.pod_ip, p.spec.node_name)
            for p in one_pod_per_node(kube, namespace, schedulable_nodes, "mesh")]
    results = ping_matrix(pods)
    evidence.attach_html("ping matrix", matrix_html([p.label for p in pods], results))
    failed = failed_pairs(results)
    assert not failed, (
        f"expected every pod pair across nodes to ping; failed: {', '.join(failed)} "
        f"({'; '.join(f'{a}->{b}: {o.detail}' for (a, b), o in results.items() if not o.ok)})"
    )


@allure.id("kubernetes-clusterip-service")
def test_clusterip_service_reaches_its_endpoint_from_another_node(
    kube: Kube, namespace: str, schedulable_nodes: list[str]
) -> None:
    if len(schedulable_nodes) < 2:
        pytest.skip("needs a server and a client on two nodes")
    server_node, client_node = schedulable_nodes[0], schedulable_nodes[-1]
    server = pod("web", nodeSelector={HOSTNAME: server_node})
    server["spec"]["containers"] = [container(command=[
        "sh", "-c", f"mkdir -p /www && echo {namespace} > /www/index.html && "
        "exec httpd -f -p 8080 -h /www"])]
    kube.core.create_namespaced_pod(namespace, server)
    kube.core.create_namespaced_pod(namespace, pod("client", nodeSelector={HOSTNAME: client_node}))
    kube.core.create_namespaced_service(namespace, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    })
    wait_running(kube, namespace, "web", 1)
    wait_running(kube, namespace, "client", 1)
    cluster_ip = kube.core.read_namespaced_service("web", namespace).spec.cluster_ip
    request = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {cluster_ip} 80"
    answers: list[str] = []

    def served() -> bool | NotYet:  # kube-proxy programs the Service asynchronously
        answers.append(run_in(kube, namespace, "client", request))
        return namespace in answers[-1] or NotYet(f"the client got {answers[-1][-200:]!r}")

    with contextlib.suppress(WaitTimeout):
        wait_for(served, timeout=30, interval=1, what=f"ClusterIP {cluster_ip} to answer")
    out = answers[-1] if answers else ""
    assert namespace in out, (
        f"expected the client on {client_node} to get the page from {server_node} through "
        f"ClusterIP {cluster_ip}:80; got {out[-300:]!r}"
    )
