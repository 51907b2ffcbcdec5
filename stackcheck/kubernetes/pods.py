"""Why a pod does not run: its container's waiting reason, its events, its node's condition.

A wait on pods (:func:`wait_pods`) says per pending pod why it is pending, and ends at once
when the reason is final: the image is not on the node and will never be pulled
(``ErrImageNeverPull``), the pod's node is NotReady, or no scheduler decides on the pod.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from stackcheck.errors import short
from stackcheck.kubernetes.api import Kube
from stackcheck.kubernetes.health import NO_SCHEDULER
from stackcheck.waits import NotYet, WaitTimeout, wait_for

#: s a pod may go without any scheduling decision before "no scheduler" is final
NO_DECISION_AFTER = 10.0
#: container waiting reasons that will not change on their own
FINAL_WAITING = frozenset({"ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError"})


class PodsStuck(WaitTimeout):
    """Pods will not run (a final reason), or did not run in time; the message says why,
    one pod per clause."""


@dataclass(frozen=True)
class Why:
    text: str
    final: bool = False


def _node_states(kube: Kube) -> dict[str, str]:
    """node name -> '' when Ready, else ``NotReady (reason: message)``."""
    out = {}
    for node in kube.core.list_node(_request_timeout=10).items:
        ready = next((c for c in node.status.conditions or [] if c.type == "Ready"), None)
        if ready is not None and ready.status == "True":
            out[node.metadata.name] = ""
        else:
            detail = ": ".join(x for x in ((ready.reason or "") if ready else "",
                                           (ready.message or "") if ready else "") if x)
            out[node.metadata.name] = "NotReady" + (f" ({detail.strip()})" if detail else "")
    return out


def why_pending(pod, events: list, nodes: dict[str, str], age: float) -> Why:
    """Why one pod is not Running, from its status, its events and its node."""
    for status in pod.status.container_statuses or []:
        waiting = status.state.waiting if status.state else None
        if waiting is not None and waiting.reason and waiting.reason != "ContainerCreating":
            message = (waiting.message or "").strip()
            return Why(f"{waiting.reason}" + (f": {message}" if message else ""),
                       waiting.reason in FINAL_WAITING)
    node = pod.spec.node_name
    if node:
        state = nodes.get(node)
        if state:
            return Why(f"its node {node} is {state}", final=True)
    mine = [e for e in events if e.involved_object.name == pod.metadata.name]
    warnings = [e for e in mine if e.type == "Warning"]
    if warnings:
        last = warnings[-1]
        return Why(f"{last.reason}: {(last.message or '').strip()}")
    scheduled = next((c for c in pod.status.conditions or [] if c.type == "PodScheduled"), None)
    if not node and scheduled is None and age > NO_DECISION_AFTER:
        return Why(f"{NO_SCHEDULER} (no scheduling decision in {age:.0f} s)", final=True)
    if not node:
        return Why("not yet scheduled")
    if mine:
        return Why(f"on {node}: {mine[-1].reason}: {(mine[-1].message or '').strip()}")
    return Why(f"on {node}: {pod.status.phase}, no event yet")


def reasons(kube: Kube, namespace: str, pods: list, since: float) -> dict[str, Why]:
    """pod name -> why it is not Running, for every pod not Running."""
    waiting = [p for p in pods if p.status.phase != "Running"]
    if not waiting:
        return {}
    events = sorted(kube.core.list_namespaced_event(namespace, _request_timeout=10).items,
                    key=lambda e: str(e.last_timestamp or e.event_time or ""))
    nodes = _node_states(kube)
    age = time.monotonic() - since
    return {p.metadata.name: why_pending(p, events, nodes, age) for p in waiting}


def describe(whys: dict[str, Why], pods: list) -> str:
    where = {p.metadata.name: p.spec.node_name for p in pods}
    return "; ".join(f"{name}{f' on {where[name]}' if where.get(name) else ''}: {why.text}"
                     for name, why in sorted(whys.items()))


def wait_pods(kube: Kube, namespace: str, count: int, *, timeout: float, what: str,
              list_pods: Callable[[], list] | None = None, interval: float = 0.5) -> list:
    """Wait until ``count`` pods (of ``list_pods``, default: the namespace's) are Running
    with an IP; return them. Ends early with :class:`PodsStuck` on a final reason."""
    since = time.monotonic()
    listing = list_pods or (lambda: kube.core.list_namespaced_pod(namespace).items)
    last: dict[str, Why] = {}
    pods: list = []

    def running() -> list | NotYet:
        nonlocal pods
        try:
            pods = listing()
        except Exception as exc:  # noqa: BLE001 - the API may blink; the timeout says so
            return NotYet(f"pods not listed: {short(exc)}")
        up = [p for p in pods if p.status.phase == "Running" and p.status.pod_ip]
        if len(up) >= count:
            return up
        last.clear()
        try:
            last.update(reasons(kube, namespace, pods, since))
        except Exception as exc:  # noqa: BLE001
            return NotYet(f"{len(up)} of {count} running; reasons not read: {short(exc)}")
        final = {name: why for name, why in last.items() if why.final}
        if final:
            raise PodsStuck(f"{what}: will not run: {describe(final, pods)}")
        return NotYet(describe(last, pods) or f"{len(up)} of {count} running")

    try:
        return wait_for(running, timeout=timeout, interval=interval, what=what,
                        retry_errors=False)
    except PodsStuck:
        raise
    except WaitTimeout as exc:
        raise PodsStuck(str(exc)) from None
