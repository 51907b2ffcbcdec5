"""Kubernetes' part of the preflight: the API's readiness, its nodes, the scheduler, the
controller manager (its leader lease, else its unit) and each node's kubelet (its health
endpoint and its Node's readiness), with the masters' and the nodes' own word where
something fails.

The scheduler is judged on its own word, not on a stopwatch: its unit on the masters, its
leader lease (when it elects a leader), then a probe pod's scheduling decision. It is down
only when it says so (its unit inactive or failed on every master that answers, or its lease
not renewed within the lease's duration); a decision that comes late from a scheduler that is
alive is "degraded (slow)" and blocks nothing (:func:`judge_scheduler`)."""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
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
    probe_budget,
)
from stackcheck.services import UnitState

API, SCHEDULER, CONTROLLER_MANAGER, KUBELET = (
    "kubernetes", "scheduler", "controller-manager", "kubelet")
#: the kubelet's health endpoint (its default --healthz-bind-address and --healthz-port)
KUBELET_HEALTHZ = ("127.0.0.1", 10248)
#: s a working scheduler decides on the probe pod in; a later decision is "slow"
SCHEDULER_PROMPT = 6.0
#: s the probe pod is watched at most (within the preflight's probe budget)
SCHEDULER_PATIENCE = 30.0
#: s of the probe budget kept for removing the probe pod and reading the lease again
SCHEDULER_MARGIN = 2.5
#: a unit's words for "not running" (absent or masked is no word on it: a scheduler may run
#: as a static pod, outside the service manager)
UNIT_STOPPED = frozenset({"inactive", "failed"})


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
    scheduler: SchedulerSeen | None = None  # None: not probed
    #: why the controller manager is not working; "" when it has no leader lease to read
    controller_manager: str | None = None
    #: why the scheduler and controller manager were not probed (too slow an API)
    unprobed: str | None = None


@dataclass
class SchedulerSeen:
    """The scheduler's own word: its unit per master, its leader lease, a probe pod's fate."""

    #: s until a probe pod got a scheduling decision; None: none while it was watched
    decided_after: float | None = None
    waited: float = 0.0  # s the probe pod was watched
    lease: Any = None  # stackcheck.kubernetes.health.Lease; None: no lease (or not read)
    lease_error: str = ""  # why the lease was not read
    #: master -> its service manager's word on kube-scheduler (None: it could not say)
    units: dict[str, UnitState | None] = field(default_factory=dict)
    error: str = ""  # why the probe itself failed (no probe pod made)

    def stopped_on(self) -> list[str]:
        """Masters whose unit says kube-scheduler is not running."""
        return [h for h, u in self.units.items() if u is not None and u.word in UNIT_STOPPED]

    def running_on(self) -> list[str]:
        """Masters whose unit says kube-scheduler runs (active, activating, reloading)."""
        return [h for h, u in self.units.items() if u is not None
                and u.word not in UNIT_STOPPED | {"absent", "masked", "unknown"}]

    def unit_says_down(self) -> bool:
        """Every master that answered says its unit is not running (and one answered)."""
        said = [u for u in self.units.values() if u is not None and u.word != "absent"]
        return bool(said) and len(self.stopped_on()) == len(said)

    def lease_says_down(self) -> bool:
        return self.lease is not None and self.lease.stale

    def alive(self) -> str:
        """The evidence that it runs, for a person ('' if none)."""
        out = []
        if self.lease is not None and not self.lease.stale:
            out.append(self.lease.describe())
        out += [f"{h}: {self.units[h].describe()}" for h in self.running_on()]  # type: ignore[union-attr]
        return "; ".join(out)

    def words(self) -> str:
        """The masters' word on the unit (with its last log line where it is not running)."""
        out = []
        for host, unit in self.units.items():
            if unit is None:
                out.append(f"{host}: kube-scheduler state not read")
                continue
            log = unit.last_log() if unit.word != "active" else ""
            out.append(f"{host}: {unit.describe()}" + (f"; {log}" if log else ""))
        return "; ".join(out)


def judge_scheduler(seen: SchedulerSeen, masters: list[str]) -> LayerHealth:
    """The scheduler's verdict from its own word. Down only when it says so: its unit not
    running on any master that answers, or its leader lease not renewed in time, and no
    decision on the probe pod. A late decision, or none yet from a scheduler whose unit
    runs or whose lease is renewed, is degraded (slow) and blocks nothing."""
    from stackcheck.kubernetes.health import NO_SCHEDULER

    if seen.decided_after is not None:
        took = f"a probe pod got a scheduling decision in {seen.decided_after:.1f} s"
        if seen.decided_after <= SCHEDULER_PROMPT:
            return LayerHealth(OK, took)
        alive = seen.alive()
        return LayerHealth(DEGRADED, f"slow: {took} (expected within {SCHEDULER_PROMPT:g} s)"
                           + (f"; {alive}" if alive else ""))
    if seen.error and not seen.units and seen.lease is None:
        return LayerHealth(DEGRADED, f"not judged: {seen.error}")
    none = (f"no scheduling decision on a probe pod in {seen.waited:.0f} s" if not seen.error
            else seen.error)
    if seen.unit_says_down():
        return LayerHealth(DOWN, f"{NO_SCHEDULER} ({seen.words()}; {none})", masters)
    if seen.lease_says_down():
        word = seen.words()
        return LayerHealth(DOWN, f"{NO_SCHEDULER} ({seen.lease.describe()}; {none}"
                           + (f"; {word})" if word else ")"), masters)
    alive = seen.alive()
    if alive:
        return LayerHealth(DEGRADED, f"slow: {none}, but it runs ({alive}); checks that "
                           "schedule pods may wait")
    unknown = [x for x in (seen.lease_error, seen.words()) if x]
    return LayerHealth(DEGRADED, f"not judged: {none}, and nothing else says whether it runs ("
                       + ("; ".join(unknown) if unknown else "no leader lease, no master "
                          "to ask") + ")")


def probe_scheduler(lab: Lab, kube: Any, run_id: str, until: float) -> SchedulerSeen:
    """The scheduler's unit on every master and its lease, read while a probe pod waits for
    its decision; the wait ends early once the unit (or a stale lease) says it is down, and
    at ``until`` (monotonic) at the latest."""
    from stackcheck.kubernetes.health import probe_decision, read_lease

    seen = SchedulerSeen()
    masters = lab.hosts_with("master")
    pool = ThreadPoolExecutor(max_workers=len(masters) + 1, thread_name_prefix="scheduler")
    units: dict[str, Future] = {m.name: pool.submit(services.unit_state, lab, m,
                                                    "kube-scheduler") for m in masters}
    lease = pool.submit(read_lease, kube, "kube-scheduler")
    pool.shutdown(wait=False)

    def gather() -> None:
        seen.units = {h: f.result() if f.done() and not f.exception() else None
                      for h, f in units.items()}
        if lease.done():
            if lease.exception():
                exc = lease.exception()
                seen.lease_error = f"its lease not read ({network_reason(exc) or short(exc)})"
            else:
                seen.lease = lease.result()

    def says_down(elapsed: float) -> bool:
        gather()
        if all(f.done() for f in units.values()) and seen.unit_says_down():
            return True
        # a stale lease: a working scheduler still gets its prompt chance
        return elapsed >= SCHEDULER_PROMPT and seen.lease_says_down()

    wait = max(SCHEDULER_PROMPT, min(SCHEDULER_PATIENCE, until - time.monotonic()))
    try:
        decision = probe_decision(kube, run_id, wait=wait, give_up=says_down)
        seen.decided_after, seen.waited = decision.after, decision.waited
    except Exception as exc:  # noqa: BLE001
        seen.error = f"the scheduler probe failed ({network_reason(exc) or short(exc)})"
    for future in [*units.values(), lease]:  # the masters' word, within the budget
        with_time = max(0.0, until - time.monotonic())
        with contextlib.suppress(Exception):  # not answered in time: "not read"
            future.result(timeout=with_time)
    gather()
    if (seen.decided_after is None and lease.done() and not lease.exception()
            and until - time.monotonic() > 1.0):
        # read again: the lease may have gone stale while the probe pod waited
        with contextlib.suppress(Exception):  # the first reading stands
            seen.lease = read_lease(kube, "kube-scheduler")
    return seen


def probe_control_plane(lab: Lab, run_id: str) -> KubeSeen:
    """The nodes, the scheduler and the controller manager, as the API shows them (the
    API's own readiness is :func:`probe_kubernetes`, run beside this)."""
    from stackcheck.kubernetes.health import RawApi, lease_renewed, nodes_ready

    assert lab.kubernetes is not None
    until = time.monotonic() + probe_budget(lab) - SCHEDULER_MARGIN
    seen = KubeSeen()
    kube = RawApi(str(lab.kubernetes.kubeconfig))
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scheduler-probe")
    scheduler = pool.submit(probe_scheduler, lab, kube, run_id, until)
    pool.shutdown(wait=False)
    try:
        seen.nodes = nodes_ready(kube)
    except Exception as exc:  # noqa: BLE001
        seen.nodes_error = f"nodes not read ({network_reason(exc) or short(exc)})"
    try:
        seen.controller_manager = lease_renewed(kube, "kube-controller-manager")
    except LookupError:
        seen.controller_manager = ""  # leader election off: its host says
    except Exception as exc:  # noqa: BLE001
        seen.controller_manager = f"its lease not read ({network_reason(exc) or short(exc)})"
    seen.scheduler = scheduler.result()
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
    out = {}  # the scheduler's masters' word is part of its probe (SchedulerSeen.units)
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
    out["scheduler"] = (judge_scheduler(kube.scheduler, masters) if kube.scheduler is not None
                        else LayerHealth(DEGRADED, "not probed"))
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
        return KubeSeen(nodes_error=why, controller_manager=None, unprobed=why)

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
