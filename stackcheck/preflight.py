"""Preflight: one bounded look at every layer a run depends on, before any check.

Every host's SSH, every etcd endpoint and the Kubernetes API are tried at once, in
threads; the whole preflight takes at most the largest connect timeout plus a few
seconds. The result is a per-layer verdict a person reads once at the start of a run
(``etcd: no quorum: h2, h3 do not answer``) and that checks depending on a layer use to
fail at once, naming the cause, instead of each timing out on its own.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from stackcheck.errors import etcd_error, network_reason, short, ssh_error
from stackcheck.lab import Host, Lab, kubeconfig_server
from stackcheck.ssh import host_connection

#: s an etcd or Kubernetes API call of the preflight may take
API_TIMEOUT = 5.0
#: s on top of the largest SSH connect timeout before the preflight gives up waiting
SLACK = 3.0

OK, DEGRADED, DOWN = "ok", "degraded", "down"


@dataclass
class LayerHealth:
    """What the preflight found of one layer."""

    status: str  # ok, degraded (works, but some members/hosts are down) or down
    summary: str  # one line for a person
    down: list[str] = field(default_factory=list)  # host names (or endpoints) that failed

    @property
    def ok(self) -> bool:
        """True when checks that depend on the layer can run (ok or degraded)."""
        return self.status != DOWN


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

    def to_dict(self) -> dict:
        return {
            "elapsed_s": round(self.elapsed_s, 2),
            "layers": {name: {"ok": h.ok, **asdict(h)} for name, h in self.layers.items()},
            "unreachable": self.unreachable,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Verdict:
        layers = {
            name: LayerHealth(h["status"], h["summary"], list(h.get("down", [])))
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


def probe_etcd(lab: Lab, endpoint: str) -> str | None:
    """None if ``endpoint`` answers a linearizable read; else why not, in one line."""
    from stackcheck.etcd import client_for

    assert lab.etcd is not None
    client = client_for(lab.etcd, endpoint, timeout=API_TIMEOUT)
    try:
        status = client.status()
    except Exception as exc:  # noqa: BLE001 - an unreachable member is the finding
        return f"does not answer ({etcd_error(exc)})"
    if not int(status.get("leader", 0) or 0):
        return "answers but has no leader"
    try:
        client.get("/stackcheck/preflight")  # linearizable: needs a quorum behind the member
    except Exception as exc:  # noqa: BLE001
        return f"answers but a linearizable read fails ({etcd_error(exc)})"
    return None


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
    return LayerHealth(status, f"{_names(down)} {verb} not answer ({detail})", down)


def etcd_health(lab: Lab, failures: dict[str, str | None]) -> LayerHealth:
    """Quorum from the members' answers: a majority must serve linearizable reads."""
    total = len(failures)
    bad = {ep: why for ep, why in failures.items() if why}
    if not bad:
        return LayerHealth(OK, f"all {total} members healthy")
    names = [endpoint_host_name(lab, ep) for ep in bad]
    detail = "; ".join(f"{endpoint_host_name(lab, ep)}: {why}" for ep, why in bad.items())
    good = total - len(bad)
    if good > total // 2:
        return LayerHealth(DEGRADED, f"quorum kept ({good}/{total}); {detail}", names)
    return LayerHealth(DOWN, f"no quorum ({good}/{total} healthy); {detail}", names)


def run(lab: Lab) -> Verdict:
    """Probe every host, etcd endpoint and the Kubernetes API at once; bounded in time."""
    started = time.monotonic()
    timeout = max(lab.ssh_for(h).connect_timeout for h in lab.hosts) + SLACK
    endpoints = list(lab.etcd.endpoints) if lab.etcd else []
    workers = len(lab.hosts) + len(endpoints) + 1
    pool = ThreadPoolExecutor(max_workers=min(64, workers), thread_name_prefix="preflight")
    ssh = {h.name: pool.submit(probe_ssh, lab, h) for h in lab.hosts}
    etcd = {ep: pool.submit(probe_etcd, lab, ep) for ep in endpoints}
    kube = pool.submit(probe_kubernetes, lab) if lab.kubernetes else None
    pool.shutdown(wait=False)  # every probe is bounded by its own timeout

    def result(future, limit_s: str):
        remaining = max(0.0, started + timeout - time.monotonic())
        try:
            return future.result(timeout=remaining)
        except TimeoutError:
            return f"no answer within {limit_s}"
        except Exception as exc:  # noqa: BLE001 - a probe's own bug must not stop the run
            return f"preflight error: {short(exc)}"

    verdict = Verdict()
    limit = f"{timeout:g} s"
    ssh_failures = {name: why for name, f in ssh.items() if (why := result(f, limit))}
    verdict.unreachable = dict(ssh_failures)
    verdict.layers["ssh"] = ssh_health(lab, ssh_failures)
    if endpoints:
        verdict.layers["etcd"] = etcd_health(lab, {ep: result(f, limit) for ep, f in etcd.items()})
    if kube is not None:
        why = result(kube, limit)
        server = _kube_server(lab)
        verdict.layers["kubernetes"] = (
            LayerHealth(DOWN, f"API at {server} {why}", [server]) if why
            else LayerHealth(OK, f"API at {server} is ready")
        )
    verdict.elapsed_s = time.monotonic() - started
    return verdict


def _kube_server(lab: Lab) -> str:
    assert lab.kubernetes is not None
    return kubeconfig_server(lab.kubernetes.kubeconfig) or "(kubeconfig)"
