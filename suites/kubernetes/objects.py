"""Small manifests and waits for the Kubernetes checks (busybox pods built offline)."""

from __future__ import annotations

import os
from typing import Any

from stackcheck.kubernetes import Kube
from stackcheck.kubernetes.pods import wait_pods
from stackcheck.waits import wait_for

IMAGE = "stackcheck/busybox:latest"
#: s to wait for pods to run (STACKCHECK_POD_TIMEOUT overrides, e.g. for a slow lab)
POD_START_TIMEOUT = float(os.environ.get("STACKCHECK_POD_TIMEOUT", "90"))
PENDING_OBSERVATION = 15.0  # s a pod must stay Pending to count as unschedulable


def container(**extra: Any) -> dict:
    return {"name": "c", "image": IMAGE, "imagePullPolicy": "Never",
            "command": ["sleep", "3600"], **extra}


def pod(name: str, labels: dict | None = None, **spec: Any) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {"containers": [container()], "terminationGracePeriodSeconds": 0, **spec},
    }


def deployment(name: str, replicas: int, **spec: Any) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [container()],
                                  "terminationGracePeriodSeconds": 0, **spec}},
        },
    }


def pods_of(kube: Kube, namespace: str, app: str) -> list:
    return kube.core.list_namespaced_pod(namespace, label_selector=f"app={app}").items


def placement(pods: list) -> dict[str, str]:
    return {p.metadata.name: p.spec.node_name or "(pending)" for p in pods}


def wait_running(kube: Kube, namespace: str, app: str, count: int,
                 timeout: float = POD_START_TIMEOUT) -> list:
    """Wait until ``count`` pods of ``app`` run; return them. A pod that will not run
    (image never pulled, node NotReady, no scheduler) ends the wait at once, saying why."""
    return wait_pods(kube, namespace, count, timeout=timeout, interval=1,
                     what=f"{count} running pod(s) of {app} in {namespace}",
                     list_pods=lambda: pods_of(kube, namespace, app))


def failed_scheduling(kube: Kube, namespace: str, pod_name: str) -> list[str]:
    """Messages of FailedScheduling events of one pod."""
    events = kube.core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={pod_name}").items
    return [e.message or "" for e in events if e.reason == "FailedScheduling"]


def wait_unschedulable(kube: Kube, namespace: str, pod_name: str,
                       timeout: float = 60.0) -> list[str]:
    """Wait for a FailedScheduling event; the pod must still be unbound. Returns the messages."""
    def seen() -> str:
        pod = kube.core.read_namespaced_pod(pod_name, namespace)
        return (f"{pod_name} is {pod.status.phase} on {pod.spec.node_name or '(no node)'}, "
                f"no FailedScheduling event")

    messages = wait_for(lambda: failed_scheduling(kube, namespace, pod_name), timeout=timeout,
                        interval=1, what=f"a FailedScheduling event for {pod_name}",
                        describe=seen)
    current = kube.core.read_namespaced_pod(pod_name, namespace)
    assert current.spec.node_name is None and current.status.phase == "Pending", (
        f"{pod_name} was expected to stay Pending; it is {current.status.phase} on "
        f"{current.spec.node_name}"
    )
    return messages
