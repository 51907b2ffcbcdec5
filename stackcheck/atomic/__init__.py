"""Atomic hosts: ostree deployments read, upgraded, rolled back and restored over SSH.

- :mod:`stackcheck.atomic.model`: deployments and status, parsed from ostree / rpm-ostree /
  bootc (ref and container-image origins, staged and pending deployments, update drivers).
- :mod:`stackcheck.atomic.backends`: one interface, an ``rpm-ostree``, a ``bootc`` and an
  ``ostree`` backend, picked per host by :func:`backend_for`.
- :mod:`stackcheck.atomic.boot`: reboot a host (through its provisioner) until a new boot id,
  services active again, and the reboot policy (``--allow-reboot``; local labs always).
- :mod:`stackcheck.atomic.journal`: where each host started (its whole layout), so it is
  always put back as it was.
"""

from stackcheck.atomic.backends import AtomicError, Backend, backend_for
from stackcheck.atomic.model import Deployment, Status

__all__ = ["AtomicError", "Backend", "Deployment", "Status", "backend_for"]
