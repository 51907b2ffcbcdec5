"""One description per layer, registered by entry point; the rest of the harness reads them.

A layer (etcd, flannel, Kubernetes, the container runtime, ...) is described once, in its
own package (``stackcheck/<layer>/layer.py``), and registered in the entry-point group
``stackcheck.layers``: its name (the ``suites/<name>/`` folder and the Allure epic), the
inventory roles it brings and the services those imply, the lines it gives the preflight's
verdict and how they are probed, what its checks need from the lab, and which client
libraries' errors mean it cannot be reached. The preflight, the blocked-check logic, the
Allure categories, the labels, the inventory's known roles and the lab picture (each layer's
part of it: ``picture``) read these descriptions; none of them names a layer.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackcheck.lab import Lab

GROUP = "stackcheck.layers"
#: the verdict line of the core (SSH to every host): not a layer's, always first
SSH = "ssh"


@dataclass(frozen=True)
class Health:
    """One line of the preflight's verdict, given by a layer."""

    name: str  # "etcd", "scheduler", "kubelet", ...
    #: lines that, when down, explain this one: they are reported (and block) first
    after: tuple[str, ...] = ()
    #: the data-path pods need it on their own host (a host where it is down is left out)
    pods_need: bool = False


@dataclass(frozen=True)
class Layer:
    """What the harness knows of one layer."""

    name: str  # its suites/<name>/ folder and Allure epic
    title: str  # how a person names it
    order: int  # where it stands among the layers (its verdict lines, its place in reports)
    #: inventory role -> the services it implies on a host
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: the services that belong to the layer (drawn with it in the lab picture)
    services: tuple[str, ...] = ()
    #: service -> its unit name where that differs from the service's name (systemd default)
    units: Mapping[str, str] = field(default_factory=dict)
    #: the lines it gives the preflight's verdict, in order
    health: tuple[Health, ...] = ()
    #: "module:object" of its :class:`stackcheck.preflight.LayerPreflight` (imported late)
    preflight: str = ""
    #: verdict lines every check of its suite needs (blocked when one is down)
    suite_needs: tuple[str, ...] = ()
    #: verdict lines its per-host checks need on their own host (blocked for that host alone)
    host_needs: tuple[str, ...] = ()
    #: fixture -> verdict lines a check using it needs
    fixture_needs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: fixture -> "one" (it reaches the check's own host over SSH) or "all" (any host)
    ssh_fixtures: Mapping[str, str] = field(default_factory=dict)
    #: how "every member" of the layer is said (``needs every etcd member``)
    every: str = "{line} on every host"
    #: modules of client libraries whose errors mean the layer cannot be reached
    errors_from: tuple[str, ...] = ()
    #: whether a lab has the layer (its checks skip themselves otherwise); None: always
    present: Callable[[Lab], bool] | None = None
    #: "module:object" of its part of the lab picture, a
    #: :class:`stackcheck.picture.model.LayerPicture` (imported late)
    picture: str = ""

    def in_lab(self, lab: Lab) -> bool:
        return self.present is None or bool(self.present(lab))

    def load_preflight(self) -> Any | None:
        """The layer's preflight object, or None when it gives no verdict line."""
        return _load(self.preflight)

    def load_picture(self) -> Any | None:
        """The layer's part of the lab picture, or None when it draws nothing of its own."""
        return _load(self.picture)


def _load(ref: str) -> Any | None:
    """The object a ``"module:object"`` reference names (None for ``""``)."""
    if not ref:
        return None
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


#: the lab itself: its hosts and SSH to them (``suites/lab``), the core's own layer
LAB = Layer(name="lab", title="the lab", order=0, services=("sshd",),
            ssh_fixtures={"host": "one", "connect": "all"})


@cache
def layers() -> tuple[Layer, ...]:
    """Every registered layer, in order."""
    found = [ep.load() for ep in entry_points(group=GROUP)]
    return tuple(sorted((x for x in found if isinstance(x, Layer)),
                        key=lambda x: (x.order, x.name)))


def layer(name: str) -> Layer | None:
    return next((x for x in layers() if x.name == name), None)


def names() -> tuple[str, ...]:
    return tuple(x.name for x in layers())


def owner(line: str) -> Layer | None:
    """The layer that gives verdict line ``line``."""
    return next((x for x in layers() if any(h.name == line for h in x.health)), None)


@cache
def health_lines() -> tuple[str, ...]:
    """Every verdict line, SSH first, each after the lines that explain it."""
    pending = [h for x in layers() for h in x.health]
    known = {h.name for h in pending}
    done: list[str] = [SSH]
    while pending:
        ready = next((h for h in pending
                      if all(a in done or a not in known for a in h.after)), pending[0])
        done.append(ready.name)
        pending.remove(ready)
    return tuple(done)


def pod_lines() -> tuple[str, ...]:
    """The verdict lines the data-path pods need on their host."""
    return tuple(h.name for x in layers() for h in x.health if h.pods_need)


def known_roles() -> frozenset[str]:
    return frozenset(role for x in layers() for role in x.roles)


def role_services() -> dict[str, tuple[str, ...]]:
    """role -> the services it implies on a host."""
    out: dict[str, tuple[str, ...]] = {}
    for x in layers():
        for role, services in x.roles.items():
            out[role] = tuple(dict.fromkeys((*out.get(role, ()), *services)))
    return out


def default_units() -> dict[str, str]:
    """service -> unit name, where they differ (the inventory's ServiceControl default)."""
    return {service: unit for x in layers() for service, unit in x.units.items()}
