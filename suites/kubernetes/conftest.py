"""Fixtures of the Kubernetes suite."""

from __future__ import annotations

import pytest

from stackcheck.kubernetes import Kube


@pytest.fixture
def schedulable_nodes(kube: Kube) -> list[str]:
    """Ready nodes without NoSchedule/NoExecute taints and not cordoned."""
    out = []
    for node in kube.core.list_node().items:
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
        tainted = any(t.effect in ("NoSchedule", "NoExecute") for t in node.spec.taints or [])
        if ready and not tainted and not node.spec.unschedulable:
            out.append(node.metadata.name)
    if not out:
        pytest.fail("no schedulable node: every node is NotReady, tainted or cordoned")
    return sorted(out)
