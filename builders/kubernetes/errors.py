"""The one error type of the Kubernetes build: its message is for an operator."""

from __future__ import annotations

from stackcheck.provisioner import ProvisionerError


class K8sBuildError(ProvisionerError):
    """Kubernetes binaries could not be found or built; the first line says why."""
