"""sshd per host: key-only root login on the host's address, own host key and config."""

from __future__ import annotations

import socket

from stackcheck_provisioners.hostlab.layout import HostPlan, Layout

SSHD = "/usr/sbin/sshd"


def prepare(layout: Layout, host: HostPlan) -> None:
    """Write the host's sshd_config (keys come from pki.make_ssh)."""
    cfg = f"""# stackcheck local lab {layout.name} ({layout.run_id}), host {host.name}
Port 22
ListenAddress {host.address}
HostKey {host.dir / "ssh_host_ed25519_key"}
PidFile /run/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile {layout.ssh_dir / "authorized_keys"}
StrictModes no
UseDNS no
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
MaxStartups 100:30:200
MaxSessions 50
"""
    (host.dir / "sshd_config").write_text(cfg)


def argv(layout: Layout, host: HostPlan) -> list[str]:
    return [SSHD, "-D", "-e", "-f", str(host.dir / "sshd_config")]


def ready(layout: Layout, host: HostPlan) -> bool:
    """True once sshd answers with its SSH banner."""
    try:
        with socket.create_connection((host.address, 22), timeout=1) as sock:
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False
