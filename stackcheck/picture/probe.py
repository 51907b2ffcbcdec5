"""Fill a :class:`Snapshot` from a running lab: etcd status, flannel leases and devices,
Kubernetes nodes, service states. Every part is bounded in time; what cannot be read
becomes a note on the picture, never an exception.
"""

from __future__ import annotations

import json
import shlex
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stackcheck.lab import Host, Lab
from stackcheck.picture.model import (
    EtcdMember,
    HostView,
    KubeNode,
    Overlay,
    Snapshot,
    layer_services,
)
from stackcheck.picture.runfiles import read_pingmatrix, read_preflight

#: Seconds each part of the probe may take (a down host must not hold the picture up).
PART_TIMEOUT = 20.0

StatusFn = Callable[[Lab], dict[str, dict[str, str]]]


def _bounded(parts: dict[str, Callable[[], Any]], notes: list[str],
             timeout: float = PART_TIMEOUT) -> dict[str, Any]:
    """Run every part at once in daemon threads; the values of those that finished within
    ``timeout`` (together), a note for each that failed or did not answer."""
    box: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def run(what: str, fn: Callable[[], Any]) -> None:
        try:
            box[what] = fn()
        except Exception as exc:  # noqa: BLE001 - a part that cannot be read is a note
            first = str(exc).splitlines()[0] if str(exc) else ""
            errors[what] = f"{type(exc).__name__}: {first}"[:200]

    workers = [threading.Thread(target=run, args=item, name=f"picture-{item[0]}", daemon=True)
               for item in parts.items()]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    for what in parts:
        if what in errors:
            notes.append(f"{what}: {errors[what]}")
        elif what not in box:
            notes.append(f"{what}: no answer within {timeout:.0f}s")
    return dict(box)


def _etcd_members(lab: Lab) -> list[EtcdMember]:
    from stackcheck.etcd import endpoint_host, member_id, statuses

    assert lab.etcd is not None
    by_address = {h.address: h.name for h in lab.hosts}
    members = []
    for endpoint, status in statuses(lab.etcd, timeout=3.0).items():
        host = by_address.get(endpoint_host(endpoint))
        if isinstance(status, Exception):
            text = str(status).splitlines()[0] if str(status) else type(status).__name__
            members.append(EtcdMember(endpoint, host, healthy=False, detail=text[:120]))
            continue
        leader = str(status.get("leader", "")) == member_id(status)
        detail = f"v{status.get('version', '?')}, raft term {status.get('raftTerm', '?')}"
        members.append(EtcdMember(endpoint, host, healthy=True, leader=leader, detail=detail))
    return members


def _flannel(lab: Lab) -> tuple[str | None, dict[str, str]]:
    """The overlay device name from flannel's config and each host address's lease subnet,
    wherever flannel keeps them (etcd, or the Kubernetes API in --kube-subnet-mgr mode)."""
    from stackcheck.flannel import source

    data = None
    if lab.etcd is not None and lab.flannel.mode != "kube":
        from stackcheck.etcd import client_for

        last: Exception | None = None
        for endpoint in lab.etcd.endpoints:
            try:
                data = source.from_etcd(client_for(lab.etcd, endpoint, timeout=3.0),
                                        lab.flannel.etcd_prefix)
                break
            except Exception as exc:  # noqa: BLE001 - try the next member
                last = exc
        else:
            if lab.kubernetes is None:
                raise RuntimeError(f"no etcd member answered: {last}")
    if data is None and lab.kubernetes is not None and lab.flannel.mode != "etcd":
        from stackcheck.kubernetes import connect

        data = source.from_kube(connect(str(lab.kubernetes.kubeconfig)))
    if data is None:
        return None, {}
    device = None
    if data.config is not None:
        device = {"vxlan": f"flannel.{data.config.vni}", "udp": "flannel0",
                  "wireguard": "flannel-wg"}.get(data.config.backend)
    subnets = {x.public_ip: x.subnets for x in data.leases}
    return device, subnets


def _device(lab: Lab, host: Host, device: str) -> Overlay:
    from stackcheck.ssh import host_connection

    conn = host_connection(lab, host)
    done = conn.run(f"ip -d -j link show {shlex.quote(device)}")
    if done.rc != 0:
        return Overlay(device=device, device_ok=False, detail=f"{device} missing")
    link = (json.loads(done.stdout) or [{}])[0]
    info = (link.get("linkinfo") or {}).get("info_data") or {}
    up = "UP" in (link.get("flags") or [])
    kind = (link.get("linkinfo") or {}).get("info_kind", "?")
    vni = f" id {info['id']}" if "id" in info else ""
    detail = f"{device}: {kind}{vni}, mtu {link.get('mtu', '?')}, {'up' if up else 'DOWN'}"
    return Overlay(device=device, device_ok=up, detail=detail)


def _overlays(lab: Lab, device: str | None, subnets: dict[str, str],
              skip: set[str], notes: list[str]) -> dict[str, Overlay]:
    """Each flannel host's lease and device; the devices are read over SSH in parallel."""
    hosts = lab.hosts_with("flannel")
    out = {h.name: Overlay(subnet=subnets.get(h.address), device=device) for h in hosts}
    if device is None:
        return out
    found: dict[str, Overlay | str] = {}

    def read(host: Host) -> None:
        try:
            found[host.name] = _device(lab, host, device)
        except Exception as exc:  # noqa: BLE001 - an unreachable host is a note
            found[host.name] = f"{type(exc).__name__}: {str(exc)[:150]}"

    workers = [threading.Thread(target=read, args=(h,), daemon=True)
               for h in hosts if h.name not in skip]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + PART_TIMEOUT / 2
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    for host in hosts:
        result = found.get(host.name)
        if isinstance(result, Overlay):
            result.subnet = out[host.name].subnet
            out[host.name] = result
        elif host.name not in skip:
            why = result or f"no answer within {PART_TIMEOUT / 2:.0f}s"
            notes.append(f"{host.name}: {device} not read: {why}")
    return out


def _nodes(lab: Lab) -> list[KubeNode]:
    from kubernetes import client, config

    assert lab.kubernetes is not None
    api = client.CoreV1Api(config.new_client_from_config(str(lab.kubernetes.kubeconfig)))
    nodes = []
    for node in api.list_node(_request_timeout=5).items:
        ready = next((c for c in node.status.conditions or [] if c.type == "Ready"), None)
        nodes.append(KubeNode(node.metadata.name, ready.status if ready else "Unknown",
                              (ready.reason or "") if ready else "no Ready condition"))
    return nodes


def _layer_services(layers: set[str] | None) -> set[str] | None:
    if layers is None:
        return None
    return {s for layer in layers for s in layer_services().get(layer, ())}


def gather(lab: Lab, *, status: StatusFn | None = None, run_dir: Path | None = None,
           run_id: str | None = None, probe: bool = True,
           layers: set[str] | None = None) -> Snapshot:
    """A snapshot of ``lab``, with the preflight and ping matrix of ``run_dir`` if given.

    ``probe=False`` draws from the inventory and the run's files only (no lab access).
    ``layers``: the suite layers a (partial) run checked; only those are probed and drawn.
    """
    notes: list[str] = []
    snap = Snapshot(lab=lab.name, provisioner=lab.provisioner, run_id=run_id,
                    taken=time.strftime("%Y-%m-%d %H:%M:%S"), notes=notes,
                    hosts=[HostView(h.name, h.address, list(h.roles)) for h in lab.hosts],
                    layers=layers)
    if run_dir is not None:
        snap.preflight = read_preflight(run_dir, notes)
        snap.ping = read_pingmatrix(run_dir, notes)
    if not probe:
        notes.append("the lab's parts were not probed")
        return snap
    ssh = (snap.preflight or {}).get("ssh")
    ssh_down = set(ssh.down) if ssh else set()
    parts: dict[str, Callable[[], Any]] = {}
    if status is not None:
        parts["service states"] = lambda: status(lab)
    if lab.etcd is not None and snap.shows("etcd"):
        parts["etcd status"] = lambda: _etcd_members(lab)
    if ((lab.etcd is not None or lab.kubernetes is not None) and lab.hosts_with("flannel")
            and snap.shows("flannel")):
        def overlays() -> dict[str, Overlay]:
            device, subnets = _flannel(lab)
            return _overlays(lab, device, subnets, ssh_down, notes)

        parts["flannel leases"] = overlays
    if lab.kubernetes is not None and snap.shows("kubernetes"):
        parts["Kubernetes nodes"] = lambda: _nodes(lab)
    found = _bounded(parts, notes)
    wanted = _layer_services(layers)
    for view in snap.hosts:
        services = (found.get("service states") or {}).get(view.name)
        if services is not None and wanted is not None:
            services = {s: state for s, state in services.items() if s in wanted}
        view.services = services
        view.overlay = (found.get("flannel leases") or {}).get(view.name)
    if "etcd status" in parts:
        snap.etcd_members = found.get("etcd status")
        for member in snap.etcd_members or []:
            view = snap.host(member.host) if member.host else None
            if view is not None:
                view.etcd = member
    if "Kubernetes nodes" in parts:
        snap.nodes = found.get("Kubernetes nodes")
        for node in snap.nodes or []:
            view = snap.host(node.name)
            if view is not None:
                view.node = node
    return snap
