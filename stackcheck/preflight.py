"""Preflight: one bounded look at every layer a run depends on, before any check.

Every host's SSH and its own layers (container runtime, kubelet, flannel's plumbing:
:mod:`stackcheck.hostlayers`), every etcd endpoint, the Kubernetes API, its nodes'
readiness, the scheduler (a probe pod gets a decision) and the controller manager (its
leader lease, else its unit) are tried at once, in threads. Where a service does not
answer, its host's service manager is asked for the unit's state and last log line
(:mod:`stackcheck.services`), so the line says why: ``h3: etcd.service masked since … —
does not answer (connection refused)``. The whole preflight takes at most the largest SSH
connect timeout plus a few seconds, plus a few seconds for the hosts' own word.

The result is a per-layer verdict a person reads once at the start of a run and that
checks depending on a layer (or on a layer of one host) use to fail at once, naming the
cause, instead of each timing out on its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stackcheck import hostlayers, services
from stackcheck.errors import etcd_error, network_reason, short, ssh_error
from stackcheck.lab import Host, Lab, kubeconfig_server
from stackcheck.ssh import host_connection

#: s an etcd or Kubernetes API call of the preflight may take
API_TIMEOUT = 5.0
#: s on top of the largest SSH connect timeout before the preflight gives up waiting
SLACK = 3.0
#: s the hosts' own word (unit state, log) may add once the probes are done
WORD_TIMEOUT = 8.0

OK, DEGRADED, DOWN = "ok", "degraded", "down"
#: how a member alive but out of the runner's reach is described (it still counts for quorum)
RUNNER_ONLY = "unreachable from the runner"
#: the order of the verdict's lines
LAYERS = ("ssh", "etcd", "kubernetes", "scheduler", "controller-manager", "runtime",
          "kubelet", "flannel")


@dataclass
class LayerHealth:
    """What the preflight found of one layer."""

    status: str  # ok, degraded (works, but some members/hosts are down) or down
    summary: str  # one line for a person
    down: list[str] = field(default_factory=list)  # host names (or endpoints) that failed
    #: host name -> why the layer is down there, one line (layers that live on hosts)
    why: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when checks that depend on the layer can run (ok or degraded)."""
        return self.status != DOWN

    def on(self, host: str) -> str | None:
        """Why the layer is down on ``host``; None when it is not."""
        if host not in self.down:
            return None
        return self.why.get(host) or self.summary


@dataclass
class Verdict:
    """The preflight's verdict, per layer; layers the lab does not have are absent."""

    layers: dict[str, LayerHealth] = field(default_factory=dict)
    elapsed_s: float = 0.0
    #: host name -> why SSH to it failed, for every unreachable host
    unreachable: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [f"{name}: {health.status} — {health.summary}"
                for name, health in self.layers.items()]

    def down_on(self, host: str, layers: set[str] | None = None) -> dict[str, str]:
        """layer -> why, for every layer (of ``layers``) found down on ``host``."""
        return {name: why for name, health in self.layers.items()
                if (layers is None or name in layers) and (why := health.on(host))}

    def to_dict(self) -> dict:
        return {
            "elapsed_s": round(self.elapsed_s, 2),
            "layers": {name: {"ok": h.ok, **asdict(h)} for name, h in self.layers.items()},
            "unreachable": self.unreachable,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Verdict:
        layers = {
            name: LayerHealth(h["status"], h["summary"], list(h.get("down", [])),
                              dict(h.get("why", {})))
            for name, h in data.get("layers", {}).items()
        }
        return cls(layers, float(data.get("elapsed_s", 0.0)), dict(data.get("unreachable", {})))

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def read(cls, path: Path) -> Verdict | None:
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None


# --- probes ------------------------------------------------------------------------------


def probe_ssh(lab: Lab, host: Host) -> str | None:
    """None if ``host`` runs a command over SSH; else why not, in one line."""
    try:
        result = host_connection(lab, host).run("true")
    except Exception as exc:  # noqa: BLE001 - any failure to reach the host is the finding
        return ssh_error(exc, host, lab.ssh_for(host))
    if result.rc != 0:
        return f"SSH works but 'true' exited {result.rc}"
    return None


@dataclass
class HostSeen:
    """One host as its probe saw it: SSH, then each of its layers."""

    ssh: str | None = None
    layers: dict[str, tuple[hostlayers.LayerProbe, str | None]] = field(default_factory=dict)


def probe_host(lab: Lab, host: Host) -> HostSeen:
    """SSH to ``host``; if it answers, its layers (runtime, kubelet, flannel plumbing)."""
    why = probe_ssh(lab, host)
    if why is not None:
        return HostSeen(ssh=why)
    try:
        return HostSeen(layers=hostlayers.probe_host(lab, host))
    except Exception as exc:  # noqa: BLE001 - the SSH session broke after 'true' worked
        return HostSeen(ssh=ssh_error(exc, host, lab.ssh_for(host)))


@dataclass
class EtcdSeen:
    why: str | None  # None: healthy
    status: dict | None = None  # the member's status, when it answered one


def probe_etcd_member(lab: Lab, endpoint: str) -> EtcdSeen:
    """The member's status and whether it serves a linearizable read."""
    from stackcheck.etcd import client_for

    assert lab.etcd is not None
    client = client_for(lab.etcd, endpoint, timeout=API_TIMEOUT)
    try:
        status = client.status()
    except Exception as exc:  # noqa: BLE001 - an unreachable member is the finding
        return EtcdSeen(f"does not answer ({etcd_error(exc)})")
    if not int(status.get("leader", 0) or 0):
        return EtcdSeen("answers but has no leader", status)
    try:
        client.get("/stackcheck/preflight")  # linearizable: needs a quorum behind the member
    except Exception as exc:  # noqa: BLE001
        return EtcdSeen(f"answers but a linearizable read fails ({etcd_error(exc)})", status)
    return EtcdSeen(None, status)


def probe_etcd(lab: Lab, endpoint: str) -> str | None:
    """None if ``endpoint`` answers a linearizable read; else why not, in one line."""
    return probe_etcd_member(lab, endpoint).why


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


# --- verdicts ------------------------------------------------------------------------------


def endpoint_host_name(lab: Lab, endpoint: str) -> str:
    """The name of the host an endpoint URL points at (the endpoint itself if none)."""
    address = urlsplit(endpoint).hostname or endpoint
    for host in lab.hosts:
        if address in (host.address, host.name):
            return host.name
    return endpoint


def _names(items: list[str]) -> str:
    return ", ".join(items)


def ssh_health(lab: Lab, failures: dict[str, str]) -> LayerHealth:
    if not failures:
        return LayerHealth(OK, f"all {len(lab.hosts)} hosts answer")
    down = sorted(failures, key=[h.name for h in lab.hosts].index)
    detail = "; ".join(f"{name}: {failures[name]}" for name in down)
    status = DOWN if len(down) == len(lab.hosts) else DEGRADED
    verb = "does" if len(down) == 1 else "do"
    return LayerHealth(status, f"{_names(down)} {verb} not answer ({detail})", down,
                       {name: failures[name] for name in down})


def _split_brain(lab: Lab, statuses: dict[str, dict]) -> str | None:
    """'split brain: …' when the members that answered report different cluster ids."""
    from stackcheck.etcd import hex_id

    clusters: dict[str, list[str]] = {}
    for endpoint, status in statuses.items():
        cluster = str((status.get("header") or {}).get("cluster_id", ""))
        clusters.setdefault(cluster, []).append(endpoint_host_name(lab, endpoint))
    if len(clusters) < 2:
        return None
    parts = "; ".join(f"{_names(names)} in cluster {hex_id(cid)}"
                      for cid, names in clusters.items())
    return f"split brain: the members report {len(clusters)} cluster ids: {parts}"


def _leaders(lab: Lab, statuses: dict[str, dict]) -> dict[str, list[str]]:
    """leader id -> the hosts that name it (members that know a leader)."""
    out: dict[str, list[str]] = {}
    for endpoint, status in statuses.items():
        leader = str(status.get("leader", "0") or "0")
        if leader != "0":
            out.setdefault(leader, []).append(endpoint_host_name(lab, endpoint))
    return out


def etcd_health(lab: Lab, failures: dict[str, str | None],
                statuses: dict[str, dict] | None = None) -> LayerHealth:
    """Quorum from the members' answers: a majority must serve linearizable reads; the
    members that answered must be one cluster and agree on the leader."""
    from stackcheck.etcd import hex_id

    total = len(failures)
    statuses = statuses or {}
    split = _split_brain(lab, statuses)
    if split:
        return LayerHealth(DOWN, split, [endpoint_host_name(lab, ep) for ep in statuses])
    leaders = _leaders(lab, statuses)
    bad = {ep: why for ep, why in failures.items() if why}
    if len(leaders) > 1:
        ranked = sorted(leaders.items(), key=lambda item: -len(item[1]))
        views = "; ".join(f"{_names(names)}: leader {hex_id(lid)}" for lid, names in ranked)
        minority = [name for _, names in ranked[1:] for name in names]
        return LayerHealth(DEGRADED, f"the members disagree on the leader: {views}", minority)
    if not bad:
        return LayerHealth(OK, f"all {total} members healthy")
    names = [endpoint_host_name(lab, ep) for ep in bad]
    why = {endpoint_host_name(lab, ep): reason for ep, reason in bad.items() if reason}
    detail = "; ".join(f"{endpoint_host_name(lab, ep)}: {reason}" for ep, reason in bad.items())
    good = total - len(bad)
    alive = good + sum(1 for reason in bad.values() if reason and reason.startswith(RUNNER_ONLY))
    if alive > good and alive > total // 2:
        return LayerHealth(DEGRADED, f"quorum kept ({alive}/{total} alive, {good} reachable from "
                                     f"the runner); {detail}", names, why)
    if good > total // 2:
        return LayerHealth(DEGRADED, f"quorum kept ({good}/{total}); {detail}", names, why)
    return LayerHealth(DOWN, f"no quorum ({good}/{total} healthy); {detail}", names, why)


def hosts_health(layer: str, hosts: list[str], failures: dict[str, str],
                 healthy: str) -> LayerHealth:
    """A layer that lives on ``hosts``: ok, degraded (some down) or down (all down)."""
    if not hosts:
        return LayerHealth(OK, "no host has it")
    if not failures:
        return LayerHealth(OK, healthy)
    down = [h for h in hosts if h in failures]
    status = DOWN if len(down) == len(hosts) else DEGRADED
    lines = [failures[h] if failures[h].startswith(f"{h}: ") else f"{h}: {failures[h]}"
             for h in down]
    return LayerHealth(status, "; ".join(lines), down, dict(zip(down, lines, strict=True)))


# --- the run -------------------------------------------------------------------------------


class _Bounded:
    """Results of futures, each waited for until one shared deadline."""

    def __init__(self, deadline: float, limit: str) -> None:
        self.deadline, self.limit = deadline, limit

    def __call__(self, future: Future, default: Callable[[str], Any]) -> Any:
        try:
            return future.result(timeout=max(0.0, self.deadline - time.monotonic()))
        except FutureTimeout:
            return default(f"no answer within {self.limit}")
        except Exception as exc:  # noqa: BLE001 - a probe's own bug must not stop the run
            return default(f"preflight error: {short(exc)}")


def _runner_only(lab: Lab, host: Host, endpoint: str) -> str | None:
    """'answers on h3 itself' when the member's endpoint answers from its own host (a TLS
    handshake with its certificate, or an HTTP reply): then only the runner cannot reach it
    (a filter, a route); the member is not dead."""
    url = urlsplit(endpoint)
    address, port = url.hostname or host.address, url.port or 2379
    if url.scheme == "https":
        probe = (f"timeout 3 openssl s_client -connect {address}:{port} </dev/null 2>&1 "
                 "| grep -q 'BEGIN CERTIFICATE\\|depth=0'")
    else:
        probe = (f"timeout 3 bash -c 'exec 3<>/dev/tcp/{address}/{port} && "
                 "printf \"GET /version HTTP/1.0\\r\\n\\r\\n\" >&3 && cat <&3' | grep -q '^HTTP/'")
    try:
        result = host_connection(lab, host).run(probe)
    except Exception:  # noqa: BLE001 - no SSH: nothing to tell
        return None
    return f"its endpoint answers on {host.name} itself" if result.rc == 0 else None


def _member_name(lab: Lab, statuses: dict[str, dict], member_id: str) -> str:
    """``h1 (1a5e…)``: a member id with the host whose endpoint answered as it."""
    from stackcheck.etcd import hex_id

    for endpoint, status in statuses.items():
        if str((status.get("header") or {}).get("member_id")) == str(member_id):
            return f"{endpoint_host_name(lab, endpoint)} ({hex_id(member_id)})"
    return hex_id(member_id)


def _etcd_word(lab: Lab, endpoint: str, seen: EtcdSeen, statuses: dict[str, dict]) -> str:
    """The member's failure with its host's word; a member alive but unreachable from the
    runner is said to be so, with what the other members say of it."""

    assert seen.why is not None
    name = endpoint_host_name(lab, endpoint)
    try:
        host = lab.host(name)
    except KeyError:
        return seen.why
    state = services.unit_state(lab, host, "etcd")
    if state is None:
        return seen.why
    line = f"{state.describe()} — {seen.why}"
    network = any(word in seen.why for word in ("timed out", "refused", "no route",
                                                "unreachable", "reset"))
    if state.word == "active" and seen.status is None and network:
        local = _runner_only(lab, host, endpoint)
        if local:
            leaders = _leaders(lab, statuses)
            agree = (f"; the other members agree on leader {_member_name(lab, statuses, lid)}"
                     if len(leaders) == 1 and (lid := next(iter(leaders))) else "")
            reason = seen.why.removeprefix("does not answer ").strip("()")
            return (f"{RUNNER_ONLY} ({reason}), alive: {state.unit} active and {local}{agree}")
    log = state.last_log() if state.word != "active" else ""
    return line + (f"; {log}" if log else "")


def run(lab: Lab, run_id: str | None = None) -> Verdict:
    """Probe every host and its layers, every etcd endpoint and the Kubernetes control plane
    at once; then ask the hosts about what did not answer. Bounded in time."""
    started = time.monotonic()
    timeout = max(lab.ssh_for(h).connect_timeout for h in lab.hosts) + SLACK
    endpoints = list(lab.etcd.endpoints) if lab.etcd else []
    workers = len(lab.hosts) + len(endpoints) + 2
    pool = ThreadPoolExecutor(max_workers=min(64, workers), thread_name_prefix="preflight")
    hosts = {h.name: pool.submit(probe_host, lab, h) for h in lab.hosts}
    etcd = {ep: pool.submit(probe_etcd_member, lab, ep) for ep in endpoints}
    api = pool.submit(probe_kubernetes, lab) if lab.kubernetes else None
    kube = (pool.submit(probe_control_plane, lab, run_id or lab.run_id or "preflight")
            if lab.kubernetes else None)
    pool.shutdown(wait=False)  # every probe is bounded by its own timeout
    result = _Bounded(started + timeout, f"{timeout:g} s")

    seen_hosts: dict[str, HostSeen] = {
        name: result(f, lambda why: HostSeen(ssh=why)) for name, f in hosts.items()}
    seen_etcd: dict[str, EtcdSeen] = {ep: result(f, EtcdSeen) for ep, f in etcd.items()}
    seen_kube: KubeSeen | None = None
    if api is not None and kube is not None:
        why = result(api, lambda why: why)
        if why is not None:  # the API is down: what else it shows does not matter
            seen_kube = KubeSeen(api=why)
        else:
            seen_kube = result(kube, lambda why: KubeSeen(nodes_error=why, scheduler=None,
                                                          controller_manager=None,
                                                          unprobed=why))

    verdict = Verdict()
    ssh_failures = {name: s.ssh for name, s in seen_hosts.items() if s.ssh}
    verdict.unreachable = dict(ssh_failures)
    reachable = {h.name for h in lab.hosts if h.name not in ssh_failures}
    findings = _Findings(lab, reachable, seen_hosts, seen_etcd, seen_kube)
    findings.ask_hosts(deadline=time.monotonic() + WORD_TIMEOUT)

    verdict.layers["ssh"] = ssh_health(lab, ssh_failures)
    if endpoints:
        statuses = {ep: s.status for ep, s in seen_etcd.items() if s.status}
        verdict.layers["etcd"] = etcd_health(
            lab, {ep: findings.etcd_lines.get(ep, s.why) for ep, s in seen_etcd.items()},
            statuses)
    if seen_kube is not None:
        verdict.layers.update(findings.kube_layers(_kube_server(lab)))
    verdict.layers.update(findings.host_layers())
    verdict.layers = {name: verdict.layers[name] for name in LAYERS if name in verdict.layers}
    verdict.elapsed_s = time.monotonic() - started
    return verdict


class _Findings:
    """The probes' findings, completed with the hosts' own word, as layer verdicts."""

    def __init__(self, lab: Lab, reachable: set[str], hosts: dict[str, HostSeen],
                 etcd: dict[str, EtcdSeen], kube: KubeSeen | None) -> None:
        self.lab, self.reachable = lab, reachable
        self.hosts, self.etcd, self.kube = hosts, etcd, kube
        self.etcd_lines: dict[str, str] = {}
        #: (layer, host) -> the line with the host's word
        self.lines: dict[tuple[str, str], str] = {}
        self.masters_word: dict[str, str] = {}  # service -> what the masters say of it

    def _host_failures(self) -> dict[tuple[str, str], tuple[str, str]]:
        """(layer, host) -> (service, why) for every host layer that did not answer."""
        out = {}
        for name, seen in self.hosts.items():
            for layer, (probe, why) in seen.layers.items():
                if why is not None:
                    out[(layer, name)] = (probe.service, probe.finding(why))
        for host, why in self._kubelets_not_ready().items():
            key = ("kubelet", host)
            if key in out:
                out[key] = ("kubelet", f"{out[key][1]}; {why}")
            else:
                out[key] = ("kubelet", why)
        return out

    def _kubelets_not_ready(self) -> dict[str, str]:
        if self.kube is None or not self.kube.nodes:
            return {}
        out = {}
        for host in self.lab.hosts_with("node"):
            node = next((n for n in self.kube.nodes
                         if n.name == host.name or host.address in n.addresses), None)
            if node is None:
                out[host.name] = "no Kubernetes Node for this host"
            elif not node.ready:
                out[host.name] = node.describe()
        return out

    def _kube_failures(self) -> dict[str, tuple[str, str]]:
        """layer -> (service on the masters, why) for the control plane's failures."""
        if self.kube is None:
            return {}
        if self.kube.api is not None:
            return {"kubernetes": ("kube-apiserver", self.kube.api)}
        out = {}
        if self.kube.scheduler:
            out["scheduler"] = ("kube-scheduler", self.kube.scheduler)
        if self.kube.controller_manager is not None:
            out["controller-manager"] = ("kube-controller-manager",
                                         self.kube.controller_manager)
        return out

    def ask_hosts(self, deadline: float) -> None:
        """Ask each reachable host's service manager about what failed there, at once."""
        jobs: dict[Any, Callable[[], str]] = {}
        lab = self.lab
        for (layer, name), (service, why) in self._host_failures().items():
            if name in self.reachable:
                jobs[(layer, name)] = partial(services.explain, lab, lab.host(name), service,
                                              why)
            self.lines[(layer, name)] = f"{name}: {why}"
        statuses = {ep: s.status for ep, s in self.etcd.items() if s.status}
        for endpoint, seen in self.etcd.items():
            if seen.why and endpoint_host_name(lab, endpoint) in self.reachable:
                jobs[("etcd", endpoint)] = partial(_etcd_word, lab, endpoint, seen, statuses)
        for layer, (service, _) in self._kube_failures().items():
            for master in lab.hosts_with("master"):
                if master.name in self.reachable:
                    jobs[(layer, f"master:{master.name}")] = partial(
                        _master_word, lab, master, service)
        if not jobs:
            return
        pool = ThreadPoolExecutor(max_workers=min(32, len(jobs)), thread_name_prefix="word")
        futures = {key: pool.submit(job) for key, job in jobs.items()}
        pool.shutdown(wait=False)
        bounded = _Bounded(deadline, f"{WORD_TIMEOUT:g} s")
        for key, future in futures.items():
            line = bounded(future, lambda _why: None)
            if line is None:
                continue
            layer, where = key
            if layer == "etcd":
                self.etcd_lines[where] = line
            elif where.startswith("master:"):
                self.masters_word.setdefault(layer, "")
                self.masters_word[layer] += ("; " if self.masters_word[layer] else "") + line
            else:
                self.lines[key] = line

    def host_layers(self) -> dict[str, LayerHealth]:
        out = {}
        healthy = {"runtime": "answers on all {n} hosts", "kubelet": "all {n} nodes Ready",
                   "flannel": "subnet.env and flannel.1 up on all {n} hosts"}
        for layer, text in healthy.items():
            hosts = [name for name, seen in self.hosts.items() if layer in seen.layers]
            if layer == "kubelet" and self.kube is not None and self.kube.api is None:
                hosts = sorted(set(hosts) | set(self._kubelets_not_ready()),
                               key=[h.name for h in self.lab.hosts].index)
            if not hosts:
                continue
            failures = {host: self.lines[(layer, host)] for host in hosts
                        if (layer, host) in self.lines}
            out[layer] = hosts_health(layer, hosts, failures, text.format(n=len(hosts)))
        return out

    def kube_layers(self, server: str) -> dict[str, LayerHealth]:
        assert self.kube is not None
        failures = self._kube_failures()
        masters = [h.name for h in self.lab.hosts_with("master")]

        def with_word(layer: str, why: str) -> str:
            word = self.masters_word.get(layer)
            return f"{why} ({word})" if word else why

        if "kubernetes" in failures:
            why = with_word("kubernetes", f"API at {server} {failures['kubernetes'][1]}")
            return {"kubernetes": LayerHealth(DOWN, why, [server])}
        nodes = "" if self.kube.nodes is None else f", {len(self.kube.nodes)} node(s)"
        out = {"kubernetes": LayerHealth(OK, f"API at {server} is ready{nodes}")}
        if self.kube.unprobed:  # not known: said, and blocks nothing
            for layer in ("scheduler", "controller-manager"):
                out[layer] = LayerHealth(DEGRADED, f"not probed: {self.kube.unprobed}")
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
            word = self.masters_word.get("controller-manager", "")
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
