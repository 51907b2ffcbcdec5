"""Provisioners turn a config into a Lab and tear it down.

The contract and the registry live in the library (:mod:`stackcheck.provisioner`) and are
re-exported here. Implementations register under the ``stackcheck.provisioners``
entry-point group, so a third party can add one without touching this repository.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackcheck.provisioner import (
        ENTRY_POINT_GROUP,
        ProvisionConfig,
        Provisioner,
        ProvisionerError,
        ServiceResult,
        available,
        get_provisioner,
    )

__all__ = [
    "ENTRY_POINT_GROUP",
    "ProvisionConfig",
    "Provisioner",
    "ProvisionerError",
    "ServiceResult",
    "available",
    "get_provisioner",
]


def __getattr__(name: str) -> Any:
    """The contract on first use: a host-side CLI under this package (the local lab's
    service control) must not pay for pydantic and the entry points."""
    if name in __all__:
        return getattr(importlib.import_module("stackcheck.provisioner"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
