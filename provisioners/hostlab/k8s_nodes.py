"""A Node's state in one phrase, as the labs on this machine report it while they wait."""

from __future__ import annotations

from typing import Any

#: Ready, but the node lifecycle controller has not lifted its not-ready taint yet
TAINTED = "Ready, still tainted not-ready"


def node_state(node: dict[str, Any]) -> str:
    """``Ready``, or what keeps the node from it (the Ready condition's reason and message)."""
    conditions = {c["type"]: c for c in node.get("status", {}).get("conditions", [])}
    ready = conditions.get("Ready", {})
    if ready.get("status") != "True":
        return f"NotReady ({ready.get('reason', 'no status yet')}: {ready.get('message', '')})"
    taints = [t["key"] for t in node.get("spec", {}).get("taints", []) or []]
    if "node.kubernetes.io/not-ready" in taints:
        return TAINTED
    return "Ready"
