"""Provisioners turn a config into a Lab and tear it down.

Implementations register under the ``stackcheck.provisioners`` entry-point group,
so a third party can add one without touching this repository.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from provisioners.base import ProvisionConfig, Provisioner, ProvisionerError

ENTRY_POINT_GROUP = "stackcheck.provisioners"

__all__ = [
    "ENTRY_POINT_GROUP",
    "ProvisionConfig",
    "Provisioner",
    "ProvisionerError",
    "available",
    "get_provisioner",
]


def available() -> list[str]:
    """Names of every registered provisioner."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def get_provisioner(name: str) -> Provisioner:
    """Load the provisioner registered as ``name``."""
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        names = ", ".join(available()) or "none"
        raise ProvisionerError(f"unknown provisioner {name!r}; registered: {names}")
    cls = matches[0].load()
    if not (isinstance(cls, type) and issubclass(cls, Provisioner)):
        raise ProvisionerError(
            f"entry point {name!r} ({matches[0].value}) is not a Provisioner subclass"
        )
    return cls()
