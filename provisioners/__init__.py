"""Provisioners turn a config into a Lab and tear it down.

The contract and the registry live in the library (:mod:`stackcheck.provisioner`) and are
re-exported here. Implementations register under the ``stackcheck.provisioners``
entry-point group, so a third party can add one without touching this repository.
"""

from __future__ import annotations

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
