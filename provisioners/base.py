"""The provisioner interface: re-exported from :mod:`stackcheck.provisioner`, where it lives."""

from stackcheck.provisioner import (
    ProvisionConfig,
    Provisioner,
    ProvisionerError,
    ProvisionerOptions,
    ServiceResult,
)

__all__ = ["ProvisionConfig", "Provisioner", "ProvisionerError", "ProvisionerOptions",
           "ServiceResult"]
