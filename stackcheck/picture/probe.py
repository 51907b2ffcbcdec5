"""Fill a :class:`Snapshot` from a running lab: the service states, and each layer's part
(its description's ``picture``: etcd members, flannel leases and devices, Kubernetes nodes,
...), all at once. Every part is bounded in time; what cannot be read becomes a note on the
picture and a part drawn as not read, never an exception.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from stackcheck import layers as registry
from stackcheck.lab import Host, Lab
from stackcheck.layers import Layer
from stackcheck.picture.model import HostView, LayerPicture, Probing, Snapshot, layer_services
from stackcheck.picture.runfiles import read_pingmatrix, read_preflight

#: Seconds each part of the probe may take (a down host must not hold the picture up).
PART_TIMEOUT = 20.0
#: the service states' part (named in its notes: "service states: no answer within 20s")
SERVICES = "service states"

StatusFn = Callable[[Lab], dict[str, dict[str, str]]]
T = TypeVar("T")


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


def each_host(hosts: list[Host], read: Callable[[Host], T], what: str,
              probing: Probing) -> dict[str, T]:
    """``read(host)`` for every host at once, each in a daemon thread, within half the
    probe's time (a down host must not hold the rest up): host name -> what it read. A host
    the preflight found unreachable is not dialled; one that fails or does not answer in
    time is a note ("h2: flannel.1 not read: ...")."""
    found: dict[str, T] = {}
    failed: dict[str, str] = {}

    def run(host: Host) -> None:
        try:
            found[host.name] = read(host)
        except Exception as exc:  # noqa: BLE001 - an unreachable host is a note
            failed[host.name] = f"{type(exc).__name__}: {str(exc)[:150]}"

    wanted = [h for h in hosts if h.name not in probing.unreachable]
    workers = [threading.Thread(target=run, args=(h,), name=f"picture-{h.name}", daemon=True)
               for h in wanted]
    for worker in workers:
        worker.start()
    bound = probing.timeout / 2
    deadline = time.monotonic() + bound
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    for host in wanted:
        if host.name not in found:
            why = failed.get(host.name) or f"no answer within {bound:g}s"
            probing.notes.append(f"{host.name}: {what} not read: {why}")
    return dict(found)


def _pictures(snap: Snapshot) -> list[tuple[Layer, LayerPicture]]:
    """The layers the snapshot shows that draw a part of their own, with that part."""
    found = ((x, x.load_picture()) for x in registry.layers() if snap.shows(x.name))
    return [(layer, picture) for layer, picture in found if picture is not None]


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
    pictures = _pictures(snap)
    found: dict[str, Any] = {}
    if probe:
        ssh = (snap.preflight or {}).get(registry.SSH)
        probing = Probing(frozenset(ssh.down if ssh else ()), notes, PART_TIMEOUT)
        parts: dict[str, Callable[[], Any]] = {}
        if status is not None:
            parts[SERVICES] = lambda: status(lab)
        for layer, picture in pictures:
            if layer.in_lab(lab):
                parts[layer.title] = partial(picture.probe, lab, probing)
        found = _bounded(parts, notes)
        wanted = _layer_services(layers)
        for view in snap.hosts:
            services = (found.get(SERVICES) or {}).get(view.name)
            if services is not None and wanted is not None:
                services = {s: state for s, state in services.items() if s in wanted}
            view.services = services
    else:
        notes.append("the lab's parts were not probed")
    for layer, picture in pictures:
        part = picture.view(snap.hosts, found.get(layer.title))
        if part.hosts or part.cluster or part.problems:
            snap.parts[layer.name] = part
    return snap
