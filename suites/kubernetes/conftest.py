"""Fixtures of the Kubernetes suite."""

from __future__ import annotations

import pytest

from stackcheck.kubernetes import Kube
from stackcheck.lab import Lab
from stackcheck_fixtures.pods import node_of_host
from stackcheck_fixtures.preflight import Partial, pod_layers, usable_hosts


@pytest.fixture
def schedulable_nodes(request: pytest.FixtureRequest, kube: Kube, lab: Lab) -> list[str]:
    """Ready nodes without NoSchedule/NoExecute taints and not cordoned; nodes whose host
    the preflight found without a runtime, kubelet or flannel are left out (the check
    reports them as blocked)."""
    nodes = kube.core.list_node().items
    _, left = usable_hosts(request.config, lab.hosts_with("node"), pod_layers())
    left_nodes = {node_of_host(nodes, lab.host(name)): why for name, why in left.items()}
    out = []
    for node in nodes:
        if node.metadata.name in left_nodes:
            continue
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
        tainted = any(t.effect in ("NoSchedule", "NoExecute") for t in node.spec.taints or [])
        if ready and not tainted and not node.spec.unschedulable:
            out.append(node.metadata.name)
    if not out:
        if left_nodes:
            from stackcheck_fixtures.preflight import Blocked

            raise Blocked("blocked: " + "; ".join(left_nodes.values()))
        pytest.fail("no schedulable node: every node is NotReady, tainted or cordoned")
    return Partial(sorted(out), {str(k): v for k, v in left_nodes.items()})
