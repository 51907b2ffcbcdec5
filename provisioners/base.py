"""The provisioner interface: re-exported from :mod:`stackcheck.provisioner`, where it lives.

The plain types load at once; the rest (pydantic) on first use, so the local lab's control
CLI, which imports this module, starts in a fraction of a second.
"""

import importlib
from typing import TYPE_CHECKING, Any

from stackcheck.provisioner_types import ProvisionerError, ServiceResult

if TYPE_CHECKING:
    from stackcheck.provisioner import ProvisionConfig, Provisioner, ProvisionerOptions

__all__ = ["ProvisionConfig", "Provisioner", "ProvisionerError", "ProvisionerOptions",
           "ServiceResult"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("stackcheck.provisioner"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
