"""Taints and labels upstream specs put on nodes and failed to remove.

Seen on v1.20.2: SchedulerPriorities "Pod should be preferably scheduled to nodes pod can
tolerate" adds 20 PreferNoSchedule taints and, now and then, one survives its own removal
(each removal patches from a cached read). Upstream's keys all start with
``kubernetes.io/e2e-``; only such keys that were not there before the run are removed.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes import client

E2E_PREFIX = "kubernetes.io/e2e-"


@dataclass(frozen=True)
class NodeMarks:
    taints: frozenset[str]  # "key=value:effect"
    labels: frozenset[str]


def _taint(t: client.V1Taint) -> str:
    return f"{t.key}={t.value or ''}:{t.effect}"


def snapshot(core: client.CoreV1Api) -> dict[str, NodeMarks]:
    """Every node's taints and label keys."""
    return {
        n.metadata.name: NodeMarks(frozenset(_taint(t) for t in n.spec.taints or []),
                                   frozenset((n.metadata.labels or {}).keys()))
        for n in core.list_node().items
    }


def remove_new(core: client.CoreV1Api, before: dict[str, NodeMarks]) -> list[str]:
    """Remove upstream's taints and labels that appeared since ``before``; say what was removed."""
    removed = []
    for node in core.list_node().items:
        name = node.metadata.name
        old = before.get(name, NodeMarks(frozenset(), frozenset()))
        taints = node.spec.taints or []
        stray = [t for t in taints if t.key.startswith(E2E_PREFIX) and _taint(t) not in old.taints]
        labels = [k for k in (node.metadata.labels or {})
                  if k.startswith(E2E_PREFIX) and k not in old.labels]
        if not stray and not labels:
            continue
        keep = [core.api_client.sanitize_for_serialization(t) for t in taints if t not in stray]
        patch: dict = {"metadata": {"labels": dict.fromkeys(labels)}} if labels else {}
        if stray:
            patch["spec"] = {"taints": keep or None}
        core.patch_node(name, patch)
        removed += [f"{name}: taint {_taint(t)}" for t in stray]
        removed += [f"{name}: label {k}" for k in labels]
    return removed
