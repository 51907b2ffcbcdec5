"""What the lab picture shows: a snapshot of the lab's parts and their health.

A snapshot is plain data, filled by :mod:`stackcheck.picture.probe` (a running lab) and
:mod:`stackcheck.picture.runfiles` (a run's preflight verdict and ping matrix), drawn by
:mod:`stackcheck.picture.svg`. ``None`` in a field means "not known", never "healthy".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stackcheck import layers

PING_STATUSES = ("ok", "recovered", "failed")
#: service states that are a problem; others (active, absent: the host has no such unit,
#: unknown: not read) are not
BAD_STATES = frozenset({"inactive", "failed", "masked", "activating", "deactivating"})


def layer_services() -> dict[str, tuple[str, ...]]:
    """suite layer -> the services that belong to it (a partial run draws only its layers)."""
    return {x.name: x.services for x in layers.layers()}



@dataclass
class EtcdMember:
    """One etcd endpoint as seen by a status call."""

    endpoint: str
    host: str | None  # inventory host name of the endpoint, if any
    healthy: bool
    leader: bool = False
    detail: str = ""  # version/db size when healthy, the error otherwise


@dataclass
class Overlay:
    """A host's flannel lease and overlay device."""

    subnet: str | None = None  # from the host's lease in etcd
    device: str | None = None  # e.g. flannel.1
    device_ok: bool | None = None  # None: not looked at
    detail: str = ""  # "vxlan id 1, mtu 1450, up" or why it is wrong


@dataclass
class KubeNode:
    name: str
    ready: str  # "True", "False", "Unknown"
    detail: str = ""


@dataclass
class PingMatrix:
    """``<run_dir>/evidence/pingmatrix.json``: status per ``(source, target)`` pair."""

    kind: str
    hosts: list[str]
    pairs: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def status(self, source: str, target: str) -> str | None:
        found = self.pairs.get((source, target))
        return found[0] if found else None

    def failed(self) -> list[str]:
        return [f"{a}->{b}" for (a, b), (status, _) in self.pairs.items() if status == "failed"]


@dataclass
class PreflightLayer:
    ok: bool
    summary: str
    down: list[str] = field(default_factory=list)


@dataclass
class HostView:
    name: str
    address: str
    roles: list[str]
    services: dict[str, str] | None = None  # service -> state word; None: not read
    etcd: EtcdMember | None = None
    overlay: Overlay | None = None
    node: KubeNode | None = None


@dataclass
class Snapshot:
    """Everything the picture draws."""

    lab: str
    provisioner: str
    hosts: list[HostView]
    run_id: str | None = None
    taken: str = ""  # when, for the title
    etcd_members: list[EtcdMember] | None = None  # None: the lab has no etcd / not probed
    nodes: list[KubeNode] | None = None  # None: the lab has no Kubernetes / not probed
    ping: PingMatrix | None = None
    preflight: dict[str, PreflightLayer] | None = None
    notes: list[str] = field(default_factory=list)  # what could not be read, and why
    #: the suite layers the run checked (None: all); the picture draws only these
    layers: set[str] | None = None

    def shows(self, layer: str) -> bool:
        return self.layers is None or layer in self.layers

    def host(self, name: str) -> HostView | None:
        return next((h for h in self.hosts if h.name == name), None)

    def down_by_preflight(self, host: str) -> list[str]:
        """The layers whose preflight found ``host`` down."""
        return [layer for layer, found in (self.preflight or {}).items() if host in found.down]

    def problems(self) -> list[str]:
        """One line per failed part: what a person should look at first."""
        out = [f"preflight {layer}: {found.summary}"
               for layer, found in (self.preflight or {}).items() if not found.ok]
        for host in self.hosts:
            off = [f"{s} {state}" for s, state in (host.services or {}).items()
                   if state in BAD_STATES]
            if off:
                out.append(f"{host.name}: {', '.join(off)}")
            if host.etcd is not None and not host.etcd.healthy and self.shows("etcd"):
                out.append(f"{host.name}: etcd member does not answer ({host.etcd.detail})")
            if (host.overlay is not None and host.overlay.device_ok is False
                    and self.shows("flannel")):
                out.append(f"{host.name}: overlay {host.overlay.detail}")
            if host.node is not None and host.node.ready != "True" and self.shows("kubernetes"):
                out.append(f"{host.name}: Kubernetes node Ready={host.node.ready}")
        leaders = [m for m in self.etcd_members or [] if m.leader]
        if self.etcd_members and not leaders and self.shows("etcd"):
            out.append("etcd: no member reports a leader")
        failed = self.ping.failed() if self.ping is not None else []
        if failed:
            more = f" and {len(failed) - 8} more" if len(failed) > 8 else ""
            out.append(f"ping matrix ({self.ping.kind}): {len(failed)} pair(s) failed: "
                       f"{', '.join(failed[:8])}{more}")
        return out
