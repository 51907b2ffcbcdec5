"""Kubernetes' part of the preflight: the API's readiness, its nodes, the scheduler (a probe
pod gets a decision), the controller manager (its leader lease, else its unit) and each
node's kubelet (its health endpoint and its Node's readiness), with the masters' and the
nodes' own word where something fails."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from stackcheck import services
from stackcheck.errors import network_reason, short
from stackcheck.hostlayers import LayerProbe
from stackcheck.lab import Host, Lab, kubeconfig_server
from stackcheck.preflight import (
    API_TIMEOUT,
    DEGRADED,
    DOWN,
    OK,
    LayerHealth,
    LayerPreflight,
    Seen,
)

API, SCHEDULER, CONTROLLER_MANAGER, KUBELET = (
    "kubernetes", "scheduler", "controller-manager", "kubelet")
#: the kubelet's health endpoint (its default --healthz-bind-address and --healthz-port)
KUBELET_HEALTHZ = ("127.0.0.1", 10248)


def probe_kubernetes(lab: Lab) -> str | None:
    """None if the Kubernetes API answers ``/readyz`` with 200; else why not."""
    from kubernetes import config

    assert lab.kubernetes is not None
    try:
        api = config.new_client_from_config(str(lab.kubernetes.kubeconfig))
        request = api.param_serialize("GET", "/readyz", auth_settings=["BearerToken"])
        response = api.call_api(*request, _request_timeout=API_TIMEOUT)
        body = response.read()
    except Exception as exc:  # noqa: BLE001 - an unreachable API is the finding
        return f"does not answer ({network_reason(exc) or short(exc)})"
    if response.status != 200:
        return f"/readyz answers {response.status}: {body[:200]!r}"
    return None


@dataclass
class KubeSeen:
    """The Kubernetes control plane as the API shows it."""

    api: str | None = None  # why the API is not ready
    nodes: list[Any] | None = None  # NodeReady per node; None: not read
    nodes_error: str | None = None
    scheduler: str | None = None  # why no pod gets a node
    #: why the controller manager is not working; "" when it has no leader lease to read
    controller_manager: str | None = None
    #: why the scheduler and controller manager were not probed (too slow an API)
    unprobed: str | None = None


def probe_control_plane(lab: Lab, run_id: str) -> KubeSeen:
    """The nodes, the scheduler and the controller manager, as the API shows them (the
    API's own readiness is :func:`probe_kubernetes`, run beside this)."""
    from stackcheck.kubernetes.health import (
        RawApi,
        lease_renewed,
        nodes_ready,
        scheduler_decides,
    )

    assert lab.kubernetes is not None
    seen = KubeSeen()
    kube = RawApi(str(lab.kubernetes.kubeconfig))
    try:
        seen.nodes = nodes_ready(kube)
    except Exception as exc:  # noqa: BLE001
        seen.nodes_error = f"nodes not read ({network_reason(exc) or short(exc)})"
    try:
        seen.scheduler = scheduler_decides(kube, run_id)
    except Exception as exc:  # noqa: BLE001
        seen.scheduler = f"the scheduler probe failed ({network_reason(exc) or short(exc)})"
    try:
        seen.controller_manager = lease_renewed(kube, "kube-controller-manager")
    except LookupError:
        seen.controller_manager = ""  # leader election off: its host says
    except Exception as exc:  # noqa: BLE001
        seen.controller_manager = f"its lease not read ({network_reason(exc) or short(exc)})"
    return seen


def kubelet_probe(host: Host) -> LayerProbe:
    """The kubelet answers ``ok`` on its health endpoint, on 127.0.0.1 (its default) or on
    the host's own address (plain bash, no curl needed); the last failure is the reason."""
    _, port = KUBELET_HEALTHZ
    attempts = []
    for address in dict.fromkeys((KUBELET_HEALTHZ[0], host.address)):
        request = shlex.quote(
            f"exec 3<>/dev/tcp/{address}/{port} && "
            "printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3")
        attempts.append(f"out=$(bash -c {request} 2>&1 | tail -n 1); "
                        "[ \"$out\" = ok ] && exit 0")
    command = "; ".join(attempts) + "; echo \"${out:-no answer}\"; exit 1"
    return LayerProbe(KUBELET, "kubelet", command, f"healthz on port {port}")



def _kubelets_not_ready(lab: Lab, kube: KubeSeen) -> dict[str, str]:
    """host -> why its Node is not Ready (or missing), for every node host."""
    if not kube.nodes:
        return {}
    out = {}
    for host in lab.hosts_with("node"):
        node = next((n for n in kube.nodes
                     if n.name == host.name or host.address in n.addresses), None)
        if node is None:
            out[host.name] = "no Kubernetes Node for this host"
        elif not node.ready:
            out[host.name] = node.describe()
    return out


def _kube_failures(kube: KubeSeen) -> dict[str, tuple[str, str]]:
    """line -> (service on the masters, why) for the control plane's failures."""
    if kube.api is not None:
        return {API: ("kube-apiserver", kube.api)}
    out = {}
    if kube.scheduler:
        out[SCHEDULER] = ("kube-scheduler", kube.scheduler)
    if kube.controller_manager is not None:
        out[CONTROLLER_MANAGER] = ("kube-controller-manager", kube.controller_manager)
    return out


def control_plane_lines(lab: Lab, kube: KubeSeen, masters_word: dict[str, str]
                        ) -> dict[str, LayerHealth]:
    """The API's, the scheduler's and the controller manager's verdict lines."""
    server = _kube_server(lab)
    failures = _kube_failures(kube)
    masters = [h.name for h in lab.hosts_with("master")]

    def with_word(layer: str, why: str) -> str:
        word = masters_word.get(layer)
        return f"{why} ({word})" if word else why

    if "kubernetes" in failures:
        why = with_word("kubernetes", f"API at {server} {failures['kubernetes'][1]}")
        return {"kubernetes": LayerHealth(DOWN, why, [server])}
    nodes = "" if kube.nodes is None else f", {len(kube.nodes)} node(s)"
    out = {"kubernetes": LayerHealth(OK, f"API at {server} is ready{nodes}")}
    if kube.unprobed:  # not known: said, and blocks nothing
        for layer in ("scheduler", "controller-manager"):
            out[layer] = LayerHealth(DEGRADED, f"not probed: {kube.unprobed}")
        return out
    scheduler = failures.get("scheduler")
    out["scheduler"] = (
        LayerHealth(DOWN, with_word("scheduler", scheduler[1]), masters) if scheduler
        else LayerHealth(OK, "a probe pod got a scheduling decision"))
    manager = failures.get("controller-manager")
    if manager is None:
        out["controller-manager"] = LayerHealth(OK, "its leader lease is renewed")
    elif manager[1]:
        out["controller-manager"] = LayerHealth(
            DOWN, with_word("controller-manager", manager[1]), masters)
    else:  # no lease (leader election off): the masters' service managers say
        word = masters_word.get("controller-manager", "")
        if not word:
            out["controller-manager"] = LayerHealth(
                OK, "no leader lease (leader election off); its unit not read")
        elif all(" active" in part.split(" — ")[0] for part in word.split("; ")):
            out["controller-manager"] = LayerHealth(OK, f"no leader lease; {word}")
        else:
            out["controller-manager"] = LayerHealth(DOWN, word, masters)
    return out


def _master_word(lab: Lab, host: Host, service: str) -> str:
    state = services.unit_state(lab, host, service)
    if state is None:
        return f"{host.name}: {service} state not read"
    log = state.last_log() if state.word != "active" else ""
    return f"{host.name}: {state.describe()}" + (f"; {log}" if log else "")


def _kube_server(lab: Lab) -> str:
    assert lab.kubernetes is not None
    return kubeconfig_server(lab.kubernetes.kubeconfig) or "(kubeconfig)"


class KubernetesPreflight(LayerPreflight):
    def host_probes(self, lab: Lab, host: Host, conn: Any) -> list[LayerProbe]:
        return [kubelet_probe(host)] if host.has_role("node") and lab.kubernetes else []

    def probes(self, lab: Lab, run_id: str) -> dict[str, Callable[[], Any]]:
        if lab.kubernetes is None:
            return {}
        return {"api": partial(probe_kubernetes, lab),
                "plane": partial(probe_control_plane, lab, run_id)}

    def unanswered(self, key: str, why: str) -> Any:
        if key == "api":
            return why
        return KubeSeen(nodes_error=why, scheduler=None, controller_manager=None, unprobed=why)

    def judge(self, seen: Seen) -> dict[str, LayerHealth]:
        lab = seen.lab
        if lab.kubernetes is None or "api" not in seen.probed:
            return {}
        api = seen.probed["api"]
        # the API is down: what else it shows does not matter
        kube = KubeSeen(api=api) if api is not None else seen.probed["plane"]
        masters = [m for m in lab.hosts_with("master") if m.name in seen.reachable]
        words = seen.ask({
            (line, master.name): partial(_master_word, lab, master, service)
            for line, (service, _) in _kube_failures(kube).items() for master in masters})
        not_ready = _kubelets_not_ready(lab, kube) if kube.api is None else {}
        kubelet = seen.host_line(KUBELET, "all {n} nodes Ready",
                                 {h: ("kubelet", why) for h, why in not_ready.items()})
        masters_word: dict[str, str] = {}
        for (line, _), word in words().items():
            masters_word[line] = f"{masters_word[line]}; {word}" if line in masters_word else word
        out = control_plane_lines(lab, kube, masters_word)
        if kubelet is not None:
            out[KUBELET] = kubelet
        return out


PREFLIGHT = KubernetesPreflight()
