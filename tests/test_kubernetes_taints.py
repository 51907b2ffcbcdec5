"""Which taints keep a node host from taking pods (kubernetes-nodes-schedulable).

The Node sample is built (provenance in the file): kubeadm >= 1.25 taints a control-plane
node ``node-role.kubernetes.io/control-plane:NoSchedule``; before 1.24 ``…/master``.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from stackcheck.kubernetes.taints import blocking_taints

NODE = Path(__file__).resolve().parent / "data/kubernetes/kubeadm-control-plane-node.yaml"


def as_object(value: Any) -> Any:
    """YAML as attribute access, like the kubernetes client's models (node.spec.taints)."""
    if isinstance(value, dict):
        return SimpleNamespace(**{k: as_object(v) for k, v in value.items()})
    if isinstance(value, list):
        return [as_object(v) for v in value]
    return value


def kubeadm_node(*taints: dict[str, str]) -> Any:
    data = yaml.safe_load(NODE.read_text())
    data["spec"]["taints"] = [*data["spec"]["taints"], *taints]
    for taint in data["spec"]["taints"]:
        taint.setdefault("value", None)
    return as_object(data)


def test_control_plane_taint_is_excused_on_a_control_plane_host() -> None:
    assert blocking_taints(kubeadm_node(), control_plane=True) == []


def test_old_master_taint_is_excused_too() -> None:
    node = kubeadm_node({"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"})
    assert blocking_taints(node, control_plane=True) == []


def test_control_plane_taint_blocks_a_plain_node_host() -> None:
    assert blocking_taints(kubeadm_node(), control_plane=False) == [
        "node-role.kubernetes.io/control-plane=:NoSchedule"]


def test_other_taints_are_never_excused() -> None:
    node = kubeadm_node({"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
                        {"key": "example.com/soft", "effect": "PreferNoSchedule"})
    assert blocking_taints(node, control_plane=True) == [
        "node.kubernetes.io/unreachable=:NoExecute"]
