"""A client of the lab's Kubernetes API: typed API groups, exec into pods, run namespaces,
node changes that can be reverted. No pytest (its fixtures: ``fixtures/kubernetes.py``)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import yaml
from kubernetes import client, config
from kubernetes.stream import stream
from kubernetes.stream.ws_client import ERROR_CHANNEL

from stackcheck.waits import NotYet, wait_for

RUN_LABEL = "stackcheck.run"


@dataclass
class Kube:
    """The typed API groups a check needs."""

    api: client.ApiClient
    kubeconfig: str
    core: client.CoreV1Api = field(init=False)
    apps: client.AppsV1Api = field(init=False)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)

    def exec_core(self) -> client.CoreV1Api:
        """A CoreV1Api on its own ApiClient, for ``kubernetes.stream``.

        ``stream()`` swaps its client's request method for a websocket while it runs, so
        sharing a client with other calls (or other streams) breaks them.
        """
        return client.CoreV1Api(config.new_client_from_config(self.kubeconfig))


def event_time(event: client.CoreV1Event) -> str:
    """When an event happened: ``lastTimestamp``, else ``eventTime`` (events.k8s.io style
    events of newer schedulers carry only that), else its first timestamp or creation."""
    for value in (event.last_timestamp, event.event_time, event.first_timestamp,
                  event.metadata.creation_timestamp if event.metadata else None):
        if value:
            return value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "(no time)"


class ExecError(RuntimeError):
    """An exec into a pod did not run the command (the API's or the kubelet's reason)."""


def pod_exec(kube: Kube, namespace: str, name: str, argv: list[str], timeout: float) -> str:
    """Run ``argv`` in a pod; its stdout and stderr. A command that exits non-zero is
    normal; an exec that never ran raises ExecError with the stream's status message
    (e.g. the apiserver could not dial the kubelet), never an empty string."""
    try:
        resp = stream(kube.exec_core().connect_get_namespaced_pod_exec, name, namespace,
                      command=argv, stderr=True, stdin=False, stdout=True, tty=False,
                      _preload_content=False, _request_timeout=timeout + 10)
    except client.ApiException as exc:  # the websocket upgrade refused: a Status in its text
        found = re.search(r'"message":"((?:[^"\\]|\\.)*)"', str(exc))
        why = found.group(1) if found else f"{exc.status} {exc.reason}"[:300]
        raise ExecError(f"exec in {namespace}/{name} failed: {why}") from None
    try:
        resp.run_forever(timeout=timeout + 10)
        still_open = resp.is_open()
        output = resp.read_stdout() + resp.read_stderr()
        status_text = resp.read_channel(ERROR_CHANNEL)
    finally:
        resp.close()
    try:
        status = yaml.safe_load(status_text) if status_text else None
    except yaml.YAMLError:
        status = {"status": "Failure", "message": status_text}
    if isinstance(status, dict) and status.get("status") == "Failure" \
            and status.get("reason") != "NonZeroExitCode":
        raise ExecError(f"exec in {namespace}/{name} failed: {status.get('message') or status}")
    if status is None and not output:
        why = "still running after" if still_open else "closed within"
        raise ExecError(f"exec in {namespace}/{name}: the stream {why} {timeout + 10:g} s "
                        "with no output and no exit status")
    return output


def api_said(exc: client.ApiException) -> str:
    """What the API server answered, in one line: ``500 Internal Server Error: etcdserver:
    request timed out`` (its Status message, not the client's dump of headers and body)."""
    body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else exc.body or ""
    try:
        message = str(json.loads(body).get("message", ""))
    except (ValueError, AttributeError):
        message = body.strip()
    said = f"{exc.status} {exc.reason}".strip()
    return f"{said}: {message[:300]}" if message else said


@contextlib.contextmanager
def run_namespace(kube: Kube, name: str, run_id: str) -> Iterator[str]:
    """Create a namespace labelled with the run id, ready for pods; delete it afterwards."""
    kube.core.create_namespace({"metadata": {"name": name, "labels": {RUN_LABEL: run_id}}})
    try:
        wait_accepts_pods(kube, name)
        yield name
    finally:
        try:
            kube.core.delete_namespace(name, grace_period_seconds=0)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


PROBE_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stackcheck-probe"},
             "spec": {"containers": [{"name": "c", "image": "stackcheck/probe"}]}}


def wait_accepts_pods(kube: Kube, namespace: str, timeout: float = 30) -> None:
    """Wait until the API admits a pod in ``namespace`` (checked with a dry-run create).

    A new namespace refuses pods until its default service account has a token, and the
    API's admission sees the token a moment after the account lists it (500, "No API token
    found for service account").
    """
    def admitted() -> bool | NotYet:
        try:
            kube.core.create_namespaced_pod(namespace, PROBE_POD, dry_run="All")
        except client.ApiException as exc:
            return NotYet(f"the API refused the dry-run pod: {exc.status} {exc.reason}: "
                          f"{(exc.body or '')[:200]}")
        return True

    wait_for(admitted, timeout=timeout, interval=0.2,
             what=f"the API to admit pods in {namespace} (its service account token)")


#: the taint the node lifecycle controller puts on a cordoned node
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


class NodeChanges:
    """Labels, taints and cordons put on nodes by one test, reverted afterwards."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._undo: list[tuple[str, dict]] = []

    def label(self, node: str, key: str, value: str) -> None:
        self._undo.append((node, {"metadata": {"labels": {key: None}}}))
        self.kube.core.patch_node(node, {"metadata": {"labels": {key: value}}})

    def taint(self, node: str, key: str, value: str, effect: str = "NoSchedule") -> None:
        taints = [t.to_dict() for t in self.kube.core.read_node(node).spec.taints or []]
        self._undo.append((node, {"spec": {"taints": taints or None}}))
        new = [*taints, {"key": key, "value": value, "effect": effect}]
        self.kube.core.patch_node(node, {"spec": {"taints": new}})

    def cordon(self, node: str, timeout: float = 30) -> None:
        """Cordon ``node`` and wait (bounded) until the control plane has seen it: the node
        lifecycle controller puts its ``unschedulable`` taint on. Pods made at once could
        otherwise meet a scheduler whose cache still shows the node schedulable (seen on a
        loaded machine: a healthy cluster placed new pods on a node cordoned ms before)."""
        self._undo.append((node, {"spec": {"unschedulable": None}}))
        self.kube.core.patch_node(node, {"spec": {"unschedulable": True}})

        def tainted() -> bool | NotYet:
            taints = self.kube.core.read_node(node).spec.taints or []
            if any(t.key == UNSCHEDULABLE_TAINT for t in taints):
                return True
            return NotYet(f"{node} is cordoned, but its taints are "
                          f"{[f'{t.key}:{t.effect}' for t in taints] or 'none'}: the "
                          "controller-manager has not marked it unschedulable")

        wait_for(tainted, timeout=timeout, interval=0.2,
                 what=f"the control plane to see {node} cordoned ({UNSCHEDULABLE_TAINT} taint)")

    def revert(self) -> None:
        errors = []
        while self._undo:
            node, patch = self._undo.pop()
            try:
                self.kube.core.patch_node(node, patch)
            except client.ApiException as exc:
                errors.append(f"{node}: {exc.reason}")
        if errors:
            raise RuntimeError(f"could not revert node changes: {errors}")


def connect(kubeconfig: str) -> Kube:
    """Clients of the API a kubeconfig file points at."""
    return Kube(config.new_client_from_config(kubeconfig), kubeconfig)
