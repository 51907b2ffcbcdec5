"""What a machine says over SSH while it comes up: sshd answering, a unit's state, its journal.

Each helper answers a bounded wait; none raises: a machine still booting is a state to report.
"""

from __future__ import annotations

from stackcheck.lab import Host, Lab
from stackcheck.ssh import close_all, host_connection


def ssh_ok(lab: Lab, host: Host) -> bool:
    """True once ``host`` runs a command over SSH with the lab's key."""
    try:
        return host_connection(lab, host).run("true").rc == 0
    except Exception:  # noqa: BLE001 - not up yet
        close_all()
        return False


def unit_active(lab: Lab, host: Host, unit: str) -> str:
    """``systemctl is-active`` of ``unit`` on ``host`` (or why it could not be asked)."""
    try:
        return host_connection(lab, host).run(f"systemctl is-active {unit}").stdout.strip()
    except Exception as exc:  # noqa: BLE001 - for a wait's description only
        close_all()
        return f"unknown (ssh: {type(exc).__name__})"


def journal(lab: Lab, host: Host, unit: str, lines: int = 3) -> str:
    """The unit's state and last journal lines on ``host`` (for a wait's description)."""
    try:
        out = host_connection(lab, host).run(
            f"systemctl is-active {unit}; journalctl -u {unit} -n {lines} --no-pager -q "
            "-o cat 2>&1 | cut -c1-240")
    except Exception as exc:  # noqa: BLE001 - for a wait's description only
        close_all()
        return f"{unit}: unknown (ssh: {type(exc).__name__})"
    state_, _, log = out.stdout.strip().partition("\n")
    return f"{unit} {state_}" + (f" ({' | '.join(log.splitlines())})" if log else "")
