"""Kubernetes: the lab's API, read and changed (no pytest).

- :mod:`stackcheck.kubernetes.api`: ``Kube`` (typed API groups), ``pod_exec``,
  ``run_namespace`` (a namespace labelled with the run id), ``NodeChanges`` (revertible).
- :mod:`stackcheck.kubernetes.picture`: its part of the lab picture (nodes Ready).
"""

from stackcheck.kubernetes.api import (
    PROBE_POD,
    RUN_LABEL,
    ExecError,
    Kube,
    NodeChanges,
    api_said,
    connect,
    event_time,
    pod_exec,
    run_namespace,
    wait_accepts_pods,
)

__all__ = [
    "PROBE_POD",
    "RUN_LABEL",
    "ExecError",
    "Kube",
    "NodeChanges",
    "api_said",
    "connect",
    "event_time",
    "pod_exec",
    "run_namespace",
    "wait_accepts_pods",
]
