"""OpenStack provisioner: a lab spec in, servers on a cloud out, nothing leaked."""

from __future__ import annotations

from .provisioner import OpenStackProvisioner, cleanup, connect

__all__ = ["OpenStackProvisioner", "cleanup", "connect"]
