"""Preflight: one bounded look at every layer a run depends on, before any check.

The runner knows no layer: each registered layer (:mod:`stackcheck.layers`) brings a
:class:`LayerPreflight` that says what to probe on each host (bundled with the others into
one SSH command per host: :mod:`stackcheck.hostlayers`) and what to probe once for the
lab (etcd's members, the Kubernetes API, ...), then judges what was seen into its verdict
lines. Every probe runs at once, in threads. Where a service does not answer, its host's
service manager is asked for the unit's state and last log line
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

from stackcheck import hostlayers, layers, services
from stackcheck.errors import short, ssh_error
from stackcheck.hostlayers import LayerProbe
from stackcheck.lab import Host, Lab
from stackcheck.ssh import host_connection

#: s an etcd or Kubernetes API call of the preflight may take
API_TIMEOUT = 5.0
#: s on top of the largest SSH connect timeout before the preflight gives up waiting
SLACK = 3.0
#: s the hosts' own word (unit state, log) may add once the probes are done
WORD_TIMEOUT = 8.0

OK, DEGRADED, DOWN = "ok", "degraded", "down"


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


# --- what a layer brings -------------------------------------------------------------------


class LayerPreflight:
    """A layer's part of the preflight; every method is optional. ``host_probes`` run in one
    SSH command per host, ``probes`` once for the lab, all at once and bounded; then
    ``judge`` turns what was seen into the layer's verdict lines."""

    def host_probes(self, lab: Lab, host: Host, conn: Any) -> list[LayerProbe]:
        """The probes to run on ``host`` (``conn`` reaches it, for a quick look first)."""
        return []

    def probes(self, lab: Lab, run_id: str) -> dict[str, Callable[[], Any]]:
        """key -> a bounded probe run once for the lab (in a thread)."""
        return {}

    def unanswered(self, key: str, why: str) -> Any:
        """What probe ``key`` saw when it gave no answer in time (or failed itself)."""
        return why

    def judge(self, seen: Seen) -> dict[str, LayerHealth]:
        """The layer's verdict lines from what was seen."""
        return {}


@dataclass
class HostSeen:
    """One host as its probe saw it: SSH, then each of its layers' probes."""

    ssh: str | None = None
    layers: dict[str, tuple[LayerProbe, str | None]] = field(default_factory=dict)


class Seen:
    """What the probes saw, handed to a layer's judge, with the means to ask a host about
    what failed there (bounded by the preflight's one deadline for the hosts' word)."""

    def __init__(self, lab: Lab, run_id: str, hosts: dict[str, HostSeen], probed: dict,
                 pool: ThreadPoolExecutor, deadline: float) -> None:
        self.lab, self.run_id, self.hosts, self.probed = lab, run_id, hosts, probed
        self.reachable = {name for name, seen in hosts.items() if seen.ssh is None}
        self._pool, self._bounded = pool, _Bounded(deadline, f"{WORD_TIMEOUT:g} s")

    def ask(self, jobs: dict[Any, Callable[[], str | None]]) -> Callable[[], dict[Any, str]]:
        """Start ``jobs`` (each asks a host something) at once; the returned function waits
        for them (until the shared deadline) and gives key -> line for those that answered."""
        futures = {key: self._pool.submit(job) for key, job in jobs.items()}

        def answers() -> dict[Any, str]:
            out = {}
            for key, future in futures.items():
                line = self._bounded(future, lambda _why: None)
                if line is not None:
                    out[key] = line
            return out
        return answers

    def host_line(self, line: str, healthy: str, extra: dict[str, tuple[str, str]] | None = None,
                  hosts: list[str] | None = None) -> LayerHealth | None:
        """The verdict of a layer line that lives on hosts, from each host's probe for it
        (and ``extra`` host -> (service, why) failures found otherwise), with each failing
        host's own word; None when no host has it. ``healthy`` may use ``{n}``."""
        failures: dict[str, tuple[str, str]] = {}
        probed = []
        for name, seen in self.hosts.items():
            if line in seen.layers:
                probed.append(name)
                probe, why = seen.layers[line]
                if why is not None:
                    failures[name] = (probe.service, probe.finding(why))
        for name, (service, why) in (extra or {}).items():
            failures[name] = (failures[name][0], f"{failures[name][1]}; {why}") \
                if name in failures else (service, why)
        order = [h.name for h in self.lab.hosts]
        names = sorted(set(hosts if hosts is not None else probed) | set(extra or {}),
                       key=order.index)
        if not names:
            return None
        lines = {name: f"{name}: {why}" for name, (_, why) in failures.items()}
        answers = self.ask({
            name: partial(services.explain, self.lab, self.lab.host(name), service, why)
            for name, (service, why) in failures.items() if name in self.reachable})()
        lines.update(answers)
        return hosts_health(line, names, {n: lines[n] for n in names if n in lines},
                            healthy.format(n=len(names)))


def preflights(lab: Lab) -> list[tuple[layers.Layer, LayerPreflight]]:
    """The preflight of every registered layer the lab has."""
    out = []
    for layer in layers.layers():
        if layer.in_lab(lab) and (found := layer.load_preflight()) is not None:
            out.append((layer, found))
    return out


# --- the core's own probe: SSH ------------------------------------------------------------


def probe_ssh(lab: Lab, host: Host) -> str | None:
    """None if ``host`` runs a command over SSH; else why not, in one line."""
    try:
        result = host_connection(lab, host).run("true")
    except Exception as exc:  # noqa: BLE001 - any failure to reach the host is the finding
        return ssh_error(exc, host, lab.ssh_for(host))
    if result.rc != 0:
        return f"SSH works but 'true' exited {result.rc}"
    return None


def probe_host(lab: Lab, host: Host, parts: list[LayerPreflight]) -> HostSeen:
    """SSH to ``host``; if it answers, its layers' probes, in one command."""
    why = probe_ssh(lab, host)
    if why is not None:
        return HostSeen(ssh=why)
    try:
        conn = host_connection(lab, host)
        probes = [probe for part in parts for probe in part.host_probes(lab, host, conn)]
        return HostSeen(layers=hostlayers.run_probes(conn, probes))
    except Exception as exc:  # noqa: BLE001 - the SSH session broke after 'true' worked
        return HostSeen(ssh=ssh_error(exc, host, lab.ssh_for(host)))


# --- verdicts ------------------------------------------------------------------------------


def endpoint_host_name(lab: Lab, endpoint: str) -> str:
    """The name of the host an endpoint URL points at (the endpoint itself if none)."""
    address = urlsplit(endpoint).hostname or endpoint
    for host in lab.hosts:
        if address in (host.address, host.name):
            return host.name
    return endpoint


def joined(items: list[str]) -> str:
    return ", ".join(items)


def ssh_health(lab: Lab, failures: dict[str, str]) -> LayerHealth:
    if not failures:
        return LayerHealth(OK, f"all {len(lab.hosts)} hosts answer")
    down = sorted(failures, key=[h.name for h in lab.hosts].index)
    detail = "; ".join(f"{name}: {failures[name]}" for name in down)
    status = DOWN if len(down) == len(lab.hosts) else DEGRADED
    verb = "does" if len(down) == 1 else "do"
    return LayerHealth(status, f"{joined(down)} {verb} not answer ({detail})", down,
                       {name: failures[name] for name in down})


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


def probe_budget(lab: Lab) -> float:
    """s every probe has to answer: the largest SSH connect timeout plus :data:`SLACK`."""
    return max(lab.ssh_for(h).connect_timeout for h in lab.hosts) + SLACK


def run(lab: Lab, run_id: str | None = None) -> Verdict:
    """Probe every host and every layer's lab-wide probes at once; then let each layer judge
    what was seen, asking the hosts about what did not answer. Bounded in time."""
    started = time.monotonic()
    run_id = run_id or lab.run_id or "preflight"
    timeout = probe_budget(lab)
    parts = preflights(lab)
    jobs = {(layer.name, key): job for layer, part in parts
            for key, job in part.probes(lab, run_id).items()}
    pool = ThreadPoolExecutor(max_workers=min(64, len(lab.hosts) + len(jobs) + 1),
                              thread_name_prefix="preflight")
    hosts = {h.name: pool.submit(probe_host, lab, h, [part for _, part in parts])
             for h in lab.hosts}
    probing = {key: pool.submit(job) for key, job in jobs.items()}
    pool.shutdown(wait=False)  # every probe is bounded by its own timeout
    result = _Bounded(started + timeout, f"{timeout:g} s")
    seen_hosts = {name: result(f, lambda why: HostSeen(ssh=why)) for name, f in hosts.items()}
    part_of = {layer.name: part for layer, part in parts}
    probed: dict[str, dict[str, Any]] = {layer.name: {} for layer, _ in parts}
    for (name, key), future in probing.items():
        part = part_of[name]
        probed[name][key] = result(future, lambda why, p=part, k=key: p.unanswered(k, why))

    verdict = Verdict()
    verdict.unreachable = {name: s.ssh for name, s in seen_hosts.items() if s.ssh}
    verdict.layers[layers.SSH] = ssh_health(lab, verdict.unreachable)
    words = ThreadPoolExecutor(max_workers=32, thread_name_prefix="word")
    deadline = time.monotonic() + WORD_TIMEOUT
    judges = ThreadPoolExecutor(max_workers=max(1, len(parts)), thread_name_prefix="judge")
    judged = {layer.name: judges.submit(
        part.judge, Seen(lab, run_id, seen_hosts, probed[layer.name], words, deadline))
        for layer, part in parts}
    judges.shutdown(wait=False)
    bounded = _Bounded(deadline + 1.0, f"{WORD_TIMEOUT:g} s")
    for layer, _ in parts:
        lines = bounded(judged[layer.name], lambda why, layer=layer: {
            h.name: LayerHealth(DEGRADED, f"not judged: {why}") for h in layer.health})
        verdict.layers.update(lines)
    # only once judged: a judge still running asks the hosts through ``words``
    words.shutdown(wait=False)
    order = layers.health_lines()
    verdict.layers = {name: verdict.layers[name]
                      for name in sorted(verdict.layers,
                                         key=lambda n: order.index(n) if n in order else 99)}
    verdict.elapsed_s = time.monotonic() - started
    return verdict
