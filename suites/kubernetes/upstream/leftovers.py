"""What upstream specs leave behind: namespaces still terminating, stray node taints/labels.

e2e.test deletes each spec's namespace without waiting: its pods (some request 60% of a
node's CPU) may still be terminating when the run ends, and would skew the scheduling of
the checks that run next. :func:`settle_namespaces` deletes what is left of the run's
namespaces (label ``e2e-run``) and waits until they are gone.

Seen on v1.20.2: SchedulerPriorities "Pod should be preferably scheduled to nodes pod can
tolerate" adds 20 PreferNoSchedule taints and, now and then, one survives its own removal
(each removal patches from a cached read). Upstream's keys all start with
``kubernetes.io/e2e-``; only such keys that were not there before the run are removed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from kubernetes import client

E2E_PREFIX = "kubernetes.io/e2e-"
RUN_LABEL = "e2e-run"  # on every namespace e2e.test creates


def e2e_namespaces(core: client.CoreV1Api) -> set[str]:
    return {ns.metadata.name for ns in core.list_namespace(label_selector=RUN_LABEL).items}


def settle_namespaces(core: client.CoreV1Api, before: set[str],
                      timeout: float = 300.0) -> tuple[list[str], float]:
    """Delete the e2e namespaces that appeared since ``before`` and wait until they are gone.

    Returns the ones still there at the timeout and the seconds waited.
    """
    started = time.monotonic()
    left = sorted(e2e_namespaces(core) - before)
    for name in left:
        try:
            core.delete_namespace(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
    while left and time.monotonic() - started < timeout:
        time.sleep(2)
        left = sorted(e2e_namespaces(core) - before)
    return left, time.monotonic() - started


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
