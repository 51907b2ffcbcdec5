"""The ``local`` provisioner: a real small lab on this machine (netns hosts, sshd, etcd, docker).

Public API: :class:`LocalProvisioner` (``create``/``destroy``/``status``/``service``/
``reboot``), :func:`destroy_state_dir` (teardown from the state dir alone, e.g. after a
crash) and :func:`healthy`. Options: ``name`` (default ``lab``), ``subnet`` (default
``10.213.0.0/24``), ``keep_on_failure``.
"""

from __future__ import annotations

from provisioners.local.layout import DEFAULT_NAME, DEFAULT_SUBNET
from provisioners.local.provisioner import LocalProvisioner, healthy
from provisioners.local.teardown import destroy_state_dir

__all__ = ["DEFAULT_NAME", "DEFAULT_SUBNET", "LocalProvisioner", "destroy_state_dir", "healthy"]
