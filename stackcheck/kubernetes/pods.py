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
from stackcheck.waits import NotYet, WaitTimeout, wait_for

#: s a pod may go without any scheduling decision before that is final (a loaded machine's
#: scheduler may take 10 s and more; a stopped one the preflight names and blocks at once)
NO_DECISION_AFTER = 30.0
#: container waiting reasons that will not change on their own (the kubelet only backs off)
FINAL_WAITING = frozenset({"ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError",
                           "CrashLoopBackOff", "ImagePullBackOff"})
#: waiting reasons that end a wait on a pod that already ran (its container died since, or
#: its image is gone): the kubelet only backs off from here
FINAL_AFTER_START = FINAL_WAITING | {"ErrImagePull", "RunContainerError", "CreateContainerError"}
#: warning events that are final once the kubelet has retried this often
FINAL_EVENTS = {"FailedCreatePodSandBox": 3, "FailedKillPod": 3}
#: warnings that say nothing of whether the pod runs (a kubelet without cluster DNS says
#: this of every pod)
QUIET_WARNINGS = frozenset({"MissingClusterDNS"})


class PodsStuck(WaitTimeout):
    """Pods will not run (a final reason), or did not run in time; the message says why,
    one pod per clause."""


@dataclass(frozen=True)
class Why:
    text: str
    final: bool = False
    #: the pod's container runs (a slow answer from it is slowness, not a fault)
    alive: bool = False


def pod_word(pod, events: list) -> Why:
    """What a pod that should run is doing, in the cluster's own words: its phase, its
    container's state (running since, waiting reason, terminated with exit code), restarts
    and its last warning event; final when it will not run again by itself."""
    phase = (pod.status.phase if pod.status else None) or "Unknown"
    parts, final = [f"phase {phase}"], phase in ("Failed", "Succeeded")
    alive = phase == "Running"
    for status in (pod.status.container_statuses or []) if pod.status else []:
        state = status.state
        if state and state.running:
            started = state.running.started_at
            parts.append(f"container {status.name} running" + (
                f" since {started.isoformat() if hasattr(started, 'isoformat') else started}"
                if started else ""))
        elif state and state.waiting:
            alive = False
            message = (state.waiting.message or "").strip()
            parts.append(f"container {status.name} waiting: {state.waiting.reason}"
                         + (f": {message}" if message else ""))
            final = final or state.waiting.reason in FINAL_AFTER_START
        elif state and state.terminated:
            alive = False
            done = state.terminated
            parts.append(f"container {status.name} terminated: {done.reason or 'exited'} "
                         f"(exit code {done.exit_code})")
            final = final or phase != "Running"
        if status.restart_count:
            parts.append(f"{status.restart_count} restart(s)")
    mine = [e for e in events if e.involved_object and e.involved_object.name
            == pod.metadata.name and e.type == "Warning" and e.reason not in QUIET_WARNINGS]
    if mine:
        last = mine[-1]
        count = last.count or 1
        parts.append(f"last warning: {last.reason}: {(last.message or '').strip()}"
                     + (f" (x{count})" if count > 1 else ""))
        final = final or count >= FINAL_EVENTS.get(last.reason or "", 10**9)
    return Why("; ".join(parts), final, alive and not final)


def read_pod_word(kube: Kube, namespace: str, name: str) -> Why:
    """:func:`pod_word` of a pod read now (with its events), bounded per call."""
    pod = kube.core.read_namespaced_pod(name, namespace, _request_timeout=10)
    events = sorted(kube.core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}", _request_timeout=10).items,
        key=lambda e: str(e.last_timestamp or e.event_time or ""))
    return pod_word(pod, events)


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
    warnings = [e for e in mine if e.type == "Warning" and e.reason not in QUIET_WARNINGS]
    if warnings:
        last = warnings[-1]
        count = last.count or 1
        return Why(f"{last.reason}: {(last.message or '').strip()}"
                   + (f" (x{count})" if count > 1 else ""),
                   count >= FINAL_EVENTS.get(last.reason or "", 10**9))
    scheduled = next((c for c in pod.status.conditions or [] if c.type == "PodScheduled"), None)
    if not node and scheduled is None and age > NO_DECISION_AFTER:
        return Why(f"no scheduling decision in {age:.0f} s: no scheduler decides on it",
                   final=True)
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
