"""On a failed check, a small redacted bundle of what the involved hosts looked like.

Every command runs under ``timeout 5`` over the shared SSH connection; the whole bundle
is bounded in time (``BUDGET`` seconds) and size (``MAX_CHARS`` per command); nothing
here ever raises into the run.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from typing import Any

from stackcheck.lab import Host, Lab, ServiceControl
from stackcheck_reports.redact import redact

BUDGET = 30.0
COMMAND_TIMEOUT = 5
MAX_CHARS = 4000
MAX_HOSTS = 5

#: lines of each service's log in a bundle
LOG_LINES = 20

_LOG_FILES = (
    "for f in /var/log/etcd*.log /var/log/docker*.log /var/log/flannel*.log "
    "/var/log/kube*.log /var/log/messages; do "
    '[ -f "$f" ] && echo "== $f" && tail -n 50 "$f"; done; true'
)


def _service_logs(host: Host) -> str:
    """Every service's log through the inventory's ``logs`` template (``journalctl -u`` on
    systemd hosts; the local lab's per-service log files): a section per service that has a
    log, then one line naming those that have none."""
    control = host.service_control or ServiceControl()
    parts = []
    for service in control.units:
        command = control.log_command(service, LOG_LINES)
        parts.append(f"out=$( {command} 2>&1 ) && [ -n \"$out\" ] && "
                     f"printf '== %s: %s\\n%s\\n' {shlex.quote(service)} "
                     f"{shlex.quote(command)} \"$out\" || none=\"$none {service}\"")
    return "none=; " + "; ".join(parts) + '; [ -z "$none" ] || echo "== no log:$none"; true'


def commands(host: Host) -> list[tuple[str, str]]:
    """(title, shell command) pairs gathered from ``host``."""
    return [
        ("ip addr", "ip addr"),
        ("ip route", "ip route"),
        ("bridge fdb", "bridge fdb show"),
        ("service logs", _service_logs(host)),
        ("log files in /var/log", _LOG_FILES),
        ("ostree status", f"ostree admin status --sysroot={shlex.quote(host.ostree_sysroot)}"),
    ]


def _default_connect(lab: Lab, host: Host) -> Any:
    from stackcheck.ssh import host_connection

    return host_connection(lab, host)


#: How a host is reached; harness tests replace it with a fake.
connect: Callable[[Lab, Host], Any] = _default_connect


def _clip(text: str, limit: int = MAX_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} chars cut ...]\n" + text[-limit:]


#: host name -> why it could not be reached: tried once per process, never again
UNREACHABLE: dict[str, str] = {}


def gather_host(lab: Lab, host: Host, deadline: float) -> str:
    """The bundle of one host as text, redacted; errors become lines of the bundle."""
    parts = [f"# must-gather {host.name} ({host.address})"]
    if host.name in UNREACHABLE:
        return redact("\n".join([*parts, f"not gathered: {UNREACHABLE[host.name]}"]))
    try:
        conn = connect(lab, host)
        conn.run("true")  # connects now, so a dead host costs one timeout, once
    except Exception as exc:  # noqa: BLE001 - a bundle must never fail the run
        UNREACHABLE[host.name] = f"unreachable ({type(exc).__name__}: {exc}); not tried again"
        return redact("\n".join([*parts, f"cannot connect: {type(exc).__name__}: {exc}"]))
    for title, command in commands(host):
        if time.monotonic() > deadline:
            parts.append(f"## {title}\n(skipped: must-gather time budget of {BUDGET:g}s used)")
            continue
        wrapped = f"timeout {COMMAND_TIMEOUT} sh -c {shlex.quote(command)}"
        try:
            result = conn.run(wrapped)
            out = (result.stdout or "") + (result.stderr or "")
            status = "" if result.rc == 0 else f" (exit {result.rc})"
            limit = MAX_CHARS * 3 if title == "service logs" else MAX_CHARS
            parts.append(f"## {title}{status}\n{_clip(out.rstrip(), limit)}")
        except Exception as exc:  # noqa: BLE001 - a bundle must never fail the run
            parts.append(f"## {title}\nfailed: {type(exc).__name__}: {exc}")
    return redact("\n\n".join(parts) + "\n")


def gather(lab: Lab, hosts: Sequence[Host],
           unreachable: dict[str, str] | None = None) -> dict[str, str]:
    """Bundles of up to ``MAX_HOSTS`` hosts, by host name, within ``BUDGET`` seconds.

    Hosts in ``unreachable`` (the preflight's finding) and hosts that failed to connect
    earlier in this process are not tried again.
    """
    for name, why in (unreachable or {}).items():
        UNREACHABLE.setdefault(name, f"the preflight found it unreachable: {why}")
    deadline = time.monotonic() + BUDGET
    return {h.name: gather_host(lab, h, deadline) for h in list(hosts)[:MAX_HOSTS]}
