"""SSH access to lab hosts through pytest-testinfra, with host keys always checked.

testinfra's paramiko backend accepts unknown host keys with a warning; ours loads the
lab's known_hosts file and rejects any key not in it. One connection per host and
process is kept and reused by every check.
"""

from __future__ import annotations

import functools
import threading

import paramiko
import testinfra
from testinfra.backend.paramiko import ParamikoBackend

from stackcheck.errors import CommandFailed, command_failure
from stackcheck.lab import Host, Lab, SSHAccess


class StrictParamikoBackend(ParamikoBackend):
    """testinfra's paramiko backend with known_hosts pinned and unknown keys rejected."""

    NAME = "stackcheck-paramiko"

    def __init__(self, hostspec: str, access: SSHAccess, **kwargs: object) -> None:
        self.access = access
        super().__init__(
            hostspec,
            ssh_identity_file=str(access.identity_file) if access.identity_file else None,
            timeout=int(access.connect_timeout),
            **kwargs,
        )

    @functools.cached_property
    def client(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        client.load_host_keys(str(self.access.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            hostname=self.host.name,
            port=self.access.port,
            username=self.access.user,
            key_filename=self.ssh_identity_file,
            timeout=self.access.connect_timeout,
            banner_timeout=self.access.connect_timeout,
            auth_timeout=self.access.connect_timeout,
            allow_agent=False,
            look_for_keys=self.ssh_identity_file is None,
        )
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(15)
        return client


_cache: dict[tuple[str, str], testinfra.host.Host] = {}
_lock = threading.Lock()


def _hostspec(lab: Lab, host: Host) -> str:
    access = lab.ssh_for(host)
    address = f"[{host.address}]" if ":" in host.address else host.address
    return f"paramiko://{access.user}@{address}:{access.port}"


def host_connection(lab: Lab, host: Host) -> testinfra.host.Host:
    """The shared testinfra Host for ``host`` (connected lazily, reused afterwards)."""
    key = (lab.name, host.name)
    with _lock:
        if key not in _cache:
            backend = StrictParamikoBackend(_hostspec(lab, host), lab.ssh_for(host))
            _cache[key] = testinfra.host.Host(backend)
        return _cache[key]


def reconnect(lab: Lab, host: Host) -> testinfra.host.Host:
    """Drop the cached connection of ``host`` (e.g. after a reboot) and make a new one."""
    close(lab, host)
    return host_connection(lab, host)


def close(lab: Lab, host: Host) -> None:
    with _lock:
        conn = _cache.pop((lab.name, host.name), None)
    if conn is not None and "client" in conn.backend.__dict__:
        conn.backend.client.close()


def close_all() -> None:
    with _lock:
        conns = list(_cache.values())
        _cache.clear()
    for conn in conns:
        if "client" in conn.backend.__dict__:
            conn.backend.client.close()


def run_checked(conn: testinfra.host.Host, host: str, command: str) -> str:
    """``command``'s stdout; raises :class:`CommandFailed` saying what ran on ``host``, its
    exit status and what it printed (testinfra's ``check_output`` shows its object reprs)."""
    __tracebackhide__ = True
    result = conn.run(command)
    if result.rc != 0:
        raise CommandFailed(command_failure(command, result.rc, result.stdout, result.stderr,
                                            host=host))
    return result.stdout
