"""How the harness reaches a lab built on this machine: its name, SSH key and etcd CA."""

from __future__ import annotations

from typing import Any

from stackcheck.lab import SSHAccess
from stackcheck_provisioners.hostlab import etcd
from stackcheck_provisioners.hostlab.layout import Layout

SSH_CONNECT_TIMEOUT = 10


def lab_fields(layout: Layout, provisioner: str) -> dict[str, Any]:
    """The :class:`stackcheck.lab.Lab` fields every lab on this machine fills the same way."""
    return {
        "name": layout.name,
        "provisioner": provisioner,
        "run_id": layout.run_id,
        "owned": True,
        "state_dir": layout.state_dir,
        "ssh": SSHAccess(user="root", identity_file=layout.ssh_dir / "id_ed25519",
                         known_hosts=layout.ssh_dir / "known_hosts",
                         connect_timeout=SSH_CONNECT_TIMEOUT),
        "etcd": etcd.access(layout),
    }
