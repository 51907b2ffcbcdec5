"""Is the control plane doing its work? Nodes Ready (with the condition's reason), the
scheduler deciding (a probe pod gets a scheduling decision within seconds), the controller
manager's leader lease renewed. Each call is bounded; used by the preflight.

The calls are plain REST on the kubeconfig's ApiClient, answered as JSON dicts: the
client's typed API classes import thousands of generated models on first use (tens of
seconds on a loaded machine), which a bounded preflight cannot afford.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: s the scheduler has to decide on the probe pod
SCHEDULER_WAIT = 6.0
#: s of slack on top of a lease's duration before it counts as not renewed
LEASE_SLACK = 5.0
#: s one REST call may take
CALL_TIMEOUT = 5.0
NO_SCHEDULER = "no pod gets a node: the scheduler is not running"
RUN_LABEL = "stackcheck.run"  # as stackcheck.kubernetes.api (not imported: it loads models)
_PROBE_SELECTOR = {"stackcheck.io/preflight-probe": "no-node-has-this"}


class ApiError(RuntimeError):
    """The API answered a REST call with an error status."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"{status}: {text[:200]}")
        self.status = status


class RawApi:
    """REST calls on a kubeconfig's ApiClient, bodies as dicts."""

    def __init__(self, kubeconfig: str) -> None:
        from kubernetes import config

        self.api = config.new_client_from_config(kubeconfig)

    def call(self, method: str, path: str, body: dict | None = None,
             query: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = self.api.param_serialize(method, path, query_params=query or [],
                                           header_params=headers, body=body,
                                           auth_settings=["BearerToken"])
        response = self.api.call_api(*request, _request_timeout=CALL_TIMEOUT)
        text = response.read().decode(errors="replace")
        if response.status >= 400:
            raise ApiError(response.status, text)
        return json.loads(text) if text else {}


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


def nodes_ready(api: RawApi) -> list[NodeReady]:
    out = []
    for node in api.call("GET", "/api/v1/nodes").get("items", []):
        status = node.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"),
                     None)
        addresses = tuple(a.get("address", "") for a in status.get("addresses") or [])
        name = node["metadata"]["name"]
        if ready is None:
            out.append(NodeReady(name, "Unknown", "", "no Ready condition", addresses))
        else:
            out.append(NodeReady(name, ready.get("status", "Unknown"), ready.get("reason") or "",
                                 ready.get("message") or "", addresses))
    return out


@dataclass
class Decision:
    """What became of a probe pod: seconds until the scheduler decided on it (None: no
    decision seen), and how long it was watched."""

    after: float | None
    waited: float


def probe_decision(api: RawApi, run_id: str, wait: float = SCHEDULER_WAIT,
                   namespace: str = "default",
                   give_up: Callable[[float], bool] = lambda _elapsed: False) -> Decision:
    """Watch a probe pod for up to ``wait`` s (less if ``give_up(elapsed)`` says so) until
    the scheduler decides on it.

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
    path = f"/api/v1/namespaces/{namespace}/pods"
    started = time.monotonic()  # from the request: the pod exists once it is answered
    api.call("POST", path, manifest)
    try:
        while True:  # one look at the pod at least
            pod = api.call("GET", f"{path}/{name}")
            conditions = (pod.get("status") or {}).get("conditions") or []
            elapsed = time.monotonic() - started
            if (pod.get("spec") or {}).get("nodeName") or any(
                    c.get("type") == "PodScheduled" for c in conditions):
                return Decision(elapsed, elapsed)
            if elapsed >= wait or give_up(elapsed):
                return Decision(None, elapsed)
            time.sleep(0.25)
    finally:
        # a probe pod left behind (API gone) carries the run's label
        with contextlib.suppress(Exception):
            api.call("DELETE", f"{path}/{name}", query=[("gracePeriodSeconds", "0")])


@dataclass
class Lease:
    """A leader-election lease as the API holds it."""

    name: str
    holder: str
    age: float | None  # s since its last renewal; None: never renewed
    duration: float  # its leaseDurationSeconds

    @property
    def stale(self) -> bool:
        """Not renewed within its duration (plus slack): its holder stopped working."""
        return self.age is None or self.age > self.duration + LEASE_SLACK

    def describe(self) -> str:
        """``its leader lease kube-system/kube-scheduler was renewed 2 s ago by h1_3f2a``."""
        where = f"its leader lease kube-system/{self.name}"
        if self.age is None:
            return f"{where} was never renewed"
        holder = f" by {self.holder}" if self.holder else ""
        text = f"{where} was renewed {self.age:.0f} s ago{holder}"
        return text + (f" (expected within {self.duration + LEASE_SLACK:g} s)"
                       if self.stale else "")


def read_lease(api: RawApi, name: str, now: dt.datetime | None = None) -> Lease | None:
    """``kube-system/<name>``'s leader lease; None when there is none (leader election off)."""
    try:
        lease = api.call("GET", f"/apis/coordination.k8s.io/v1/namespaces/kube-system/"
                                f"leases/{name}")
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    return lease_of(lease, now)


def lease_of(lease: dict[str, Any], now: dt.datetime | None = None) -> Lease:
    """A Lease object (as the API answers it) seen at ``now``."""
    spec = lease.get("spec") or {}
    renewed = spec.get("renewTime")
    age = None
    if renewed:
        when = dt.datetime.fromisoformat(renewed.replace("Z", "+00:00"))
        age = ((now or dt.datetime.now(dt.UTC)) - when).total_seconds()
    return Lease((lease.get("metadata") or {}).get("name", ""), spec.get("holderIdentity") or "",
                 age, float(spec.get("leaseDurationSeconds") or 15))


def lease_renewed(api: RawApi, name: str, now: dt.datetime | None = None) -> str | None:
    """None if ``kube-system/<name>``'s leader lease was renewed within its duration (+
    slack); why not otherwise. Raises LookupError when there is no such lease (leader
    election off: the caller asks the host instead)."""
    lease = read_lease(api, name, now)
    if lease is None:
        raise LookupError(f"no leader lease kube-system/{name}")
    return lease.describe() if lease.stale else None
