"""Node taints: which ones keep pods off a node, and which a control-plane host may keep.

kubeadm taints its control-plane nodes so that ordinary pods stay off them: before v1.24
``node-role.kubernetes.io/master:NoSchedule``, in v1.24 both, from v1.25 only
``node-role.kubernetes.io/control-plane:NoSchedule`` (kubeadm's ``ControlPlaneTaint`` and
``OldControlPlaneTaint``). Either is expected on a host with the ``master`` role.
"""

from __future__ import annotations

from typing import Any

#: taint keys kubeadm (and most installers) put on control-plane nodes, old and new
CONTROL_PLANE_TAINT_KEYS = ("node-role.kubernetes.io/master",
                            "node-role.kubernetes.io/control-plane")
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")


def describe(taint: Any) -> str:
    """``key=value:Effect``, as ``kubectl describe node`` shows it."""
    return f"{taint.key}={taint.value or ''}:{taint.effect}"


def blocking_taints(node: Any, control_plane: bool) -> list[str]:
    """The taints that keep ordinary pods off ``node`` and are not excused.

    ``control_plane``: the host has the control-plane (``master``) role, so the
    control-plane taints are what it should carry, not a fault.
    """
    return [describe(t) for t in (node.spec.taints or [])
            if t.effect in BLOCKING_EFFECTS
            and not (control_plane and t.key in CONTROL_PLANE_TAINT_KEYS)]
