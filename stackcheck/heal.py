"""Preflight heal hooks: what a layer puts back that an interrupted earlier run left changed.

A layer that changes a lab journals it on disk (:mod:`stackcheck.journal`) and offers a
:class:`Healer` under the ``stackcheck.healers`` entry-point group (``NAME =
module:HEALER``). Before any check, the run calls every healer in ``order``: the fault
journal restarts stopped services, the atomic journal puts hosts back on their deployment.
The caller (fixtures/lab.py) names no layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from stackcheck.lab import Lab
from stackcheck.provisioner import Provisioner

ENTRY_POINT_GROUP = "stackcheck.healers"


@dataclass(frozen=True)
class Healer:
    """One layer's heal step, with the words an operator reads about it."""

    #: (lab, provisioner, project root) -> what was done, one line each; raises ``errors``
    heal: Callable[[Lab, Provisioner, Path], list[str]]
    done: str  # "restarted what an earlier run left stopped"
    failed: str  # "could not restore the lab"
    errors: tuple[type[Exception], ...]
    order: int = 50  # lower first: services are restarted before hosts are rebooted
    separator: str = ", "


def healers() -> list[Healer]:
    """Every registered healer, in order."""
    found = [ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP)]
    return sorted((h for h in found if isinstance(h, Healer)), key=lambda h: h.order)
