"""Is the control plane doing its work? Nodes Ready (with the condition's reason), the
scheduler deciding (a probe pod gets a scheduling decision within seconds), the controller
manager's leader lease renewed. Each call is bounded; used by the preflight."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from dataclasses import dataclass

from kubernetes import client

from stackcheck.kubernetes.api import RUN_LABEL, Kube

#: s the scheduler has to decide on the probe pod
SCHEDULER_WAIT = 6.0
#: s of slack on top of a lease's duration before it counts as not renewed
LEASE_SLACK = 5.0
NO_SCHEDULER = "no pod gets a node: the scheduler is not running"
_PROBE_SELECTOR = {"stackcheck.io/preflight-probe": "no-node-has-this"}


@dataclass
class NodeReady:
    name: str
    status: str  # True, False, Unknown
    reason: str = ""
    message: str = ""
    addresses: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return self.status == "True"

    def describe(self) -> str:
        """``node h3 NotReady (NodeStatusUnknown: Kubelet stopped posting node status.)``."""
        word = "Ready" if self.ready else "NotReady"
        why = ": ".join(x for x in (self.reason, self.message.strip()) if x)
        return f"node {self.name} {word}" + (f" ({why})" if why and not self.ready else "")


def nodes_ready(kube: Kube, timeout: float = 5.0) -> list[NodeReady]:
    out = []
    for node in kube.core.list_node(_request_timeout=timeout).items:
        ready = next((c for c in node.status.conditions or [] if c.type == "Ready"), None)
        addresses = tuple(a.address for a in node.status.addresses or [])
        if ready is None:
            out.append(NodeReady(node.metadata.name, "Unknown", "", "no Ready condition",
                                 addresses))
        else:
            out.append(NodeReady(node.metadata.name, ready.status, ready.reason or "",
                                 ready.message or "", addresses))
    return out


def scheduler_decides(kube: Kube, run_id: str, wait: float = SCHEDULER_WAIT,
                      namespace: str = "default") -> str | None:
    """None if the scheduler decides on a probe pod within ``wait`` s; else why not.

    The probe pod selects a node label no node has, so the scheduler's decision is
    "Unschedulable": it proves the scheduler works without starting anything on a node.
    """
    name = f"stackcheck-preflight-{uuid.uuid4().hex[:8]}"
    manifest = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {RUN_LABEL: run_id}},
        "spec": {"nodeSelector": _PROBE_SELECTOR, "terminationGracePeriodSeconds": 0,
                 "automountServiceAccountToken": False,
                 "containers": [{"name": "c", "image": "stackcheck/probe",
                                 "imagePullPolicy": "Never"}]},
    }
    kube.core.create_namespaced_pod(namespace, manifest, _request_timeout=5)
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            pod = kube.core.read_namespaced_pod(name, namespace, _request_timeout=5)
            if pod.spec.node_name or any(c.type == "PodScheduled"
                                         for c in pod.status.conditions or []):
                return None
            time.sleep(0.25)
        return f"{NO_SCHEDULER} (a probe pod got no scheduling decision within {wait:g} s)"
    finally:
        with contextlib.suppress(client.ApiException):
            kube.core.delete_namespaced_pod(name, namespace, grace_period_seconds=0,
                                            _request_timeout=5)


def lease_renewed(kube: Kube, name: str, now: dt.datetime | None = None) -> str | None:
    """None if ``kube-system/<name>``'s leader lease was renewed within its duration (+
    slack); why not otherwise. Raises LookupError when there is no such lease (leader
    election off: the caller asks the host instead)."""
    coordination = client.CoordinationV1Api(kube.api)
    try:
        lease = coordination.read_namespaced_lease(name, "kube-system", _request_timeout=5)
    except client.ApiException as exc:
        if exc.status == 404:
            raise LookupError(f"no leader lease kube-system/{name}") from None
        raise
    renewed = lease.spec.renew_time
    if renewed is None:
        return f"its leader lease kube-system/{name} was never renewed"
    now = now or dt.datetime.now(dt.UTC)
    age = (now - renewed).total_seconds()
    limit = (lease.spec.lease_duration_seconds or 15) + LEASE_SLACK
    if age > limit:
        holder = lease.spec.holder_identity or "nobody"
        return (f"its leader lease kube-system/{name} was last renewed {age:.0f} s ago "
                f"by {holder} (expected within {limit:g} s)")
    return None
