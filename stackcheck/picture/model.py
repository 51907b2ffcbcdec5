"""What the lab picture shows: a snapshot of the lab's parts and their health.

A snapshot is plain data, filled by :mod:`stackcheck.picture.probe` (a running lab) and
:mod:`stackcheck.picture.runfiles` (a run's preflight verdict and ping matrix), drawn by
:mod:`stackcheck.picture.svg`. Each layer draws its own part (:class:`LayerPicture`, named
by its description's ``picture``): lines on the hosts' cards, lines for the whole cluster
and the problems it found, as plain :class:`Line` records; the core names no layer.
``None`` means "not known", never "healthy": a part not read is drawn grey.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from stackcheck import layers

if TYPE_CHECKING:
    from stackcheck.lab import Lab

PING_STATUSES = ("ok", "recovered", "failed")
#: service states that are a problem; others (active, absent: the host has no such unit,
#: unknown: not read) are not
BAD_STATES = frozenset({"inactive", "failed", "masked", "activating", "deactivating"})

#: how a line is drawn: ok green, bad red, unknown grey (not known, never healthy), info a
#: plain fact in ink (a lease's subnet)
State = Literal["ok", "bad", "unknown", "info"]
OK: State = "ok"
BAD: State = "bad"
UNKNOWN: State = "unknown"
INFO: State = "info"


def layer_services() -> dict[str, tuple[str, ...]]:
    """suite layer -> the services that belong to it (a partial run draws only its layers)."""
    return {x.name: x.services for x in layers.layers()}


@dataclass(frozen=True)
class Line:
    """One line of a layer's part: on a host's card, or under the cards for the cluster."""

    text: str
    state: State = UNKNOWN
    strong: bool = False  # drawn bold (a leader, a failure)
    tip: str = ""  # the tooltip: the word behind the line (an endpoint and its answer)
    detail: bool = False  # a smaller line that details the one before it


@dataclass
class LayerView:
    """One layer's part of the picture, as plain lines."""

    hosts: dict[str, list[Line]] = field(default_factory=dict)  # host name -> its lines
    cluster: list[Line] = field(default_factory=list)  # the layer as a whole
    #: one line per failed part ("h2: etcd member does not answer (...)"), for problems()
    problems: list[str] = field(default_factory=list)

    def bad(self, host: str) -> bool:
        return any(line.state == BAD for line in self.hosts.get(host, ()))


@dataclass
class Probing:
    """What a layer's probe is given besides the lab."""

    unreachable: frozenset[str]  # hosts the run's preflight found without SSH: not dialled
    notes: list[str]  # where a part that cannot be read says why
    timeout: float  # seconds the whole probe may take (it is given up after that)


class LayerPicture(Protocol):
    """A layer's part of the lab picture (its description's ``picture``)."""

    def probe(self, lab: Lab, probing: Probing) -> Any:
        """What the layer's part of ``lab`` looks like now, as the layer's own data; None
        when the lab gives nothing to read. Runs beside the other layers' probes, bounded;
        may raise (the picture notes it and draws the part as not read)."""

    def view(self, hosts: Sequence[HostView], found: Any | None) -> LayerView:
        """The lines and problems of ``found`` (None: not read, or not probed)."""


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

    def bad_services(self) -> list[str]:
        return [f"{s} {state}" for s, state in (self.services or {}).items()
                if state in BAD_STATES]


@dataclass
class Snapshot:
    """Everything the picture draws."""

    lab: str
    provisioner: str
    hosts: list[HostView]
    run_id: str | None = None
    taken: str = ""  # when, for the title
    #: layer name -> its part, in the layers' order (a layer that draws nothing is absent)
    parts: dict[str, LayerView] = field(default_factory=dict)
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

    def shown(self) -> list[LayerView]:
        """The parts drawn: those of the layers the run checked."""
        return [part for name, part in self.parts.items() if self.shows(name)]

    def host_failed(self, name: str) -> bool:
        """Whether a part of host ``name`` failed (the preflight found it down, a service of
        it is off, a layer drew one of its lines red)."""
        host = self.host(name)
        return bool(self.down_by_preflight(name)) or (
            host is not None and bool(host.bad_services())) or any(
            part.bad(name) for part in self.shown())

    def problems(self) -> list[str]:
        """One line per failed part: what a person should look at first."""
        out = [f"preflight {layer}: {found.summary}"
               for layer, found in (self.preflight or {}).items() if not found.ok]
        out += [f"{host.name}: {', '.join(host.bad_services())}" for host in self.hosts
                if host.bad_services()]
        out += [line for part in self.shown() for line in part.problems]
        failed = self.ping.failed() if self.ping is not None else []
        if failed:
            more = f" and {len(failed) - 8} more" if len(failed) > 8 else ""
            out.append(f"ping matrix ({self.ping.kind}): {len(failed)} pair(s) failed: "
                       f"{', '.join(failed[:8])}{more}")
        return out
