"""The host's own word about a service: its state in the host's service manager and the last
lines of its log, read through the inventory's ``service_control`` (``status``, ``journal``).

A service that does not answer is described the way its host knows it:
``h3: etcd.service masked since 2026-12-03 08:01:02 UTC``, with its last log line. On a
systemd host these are ``systemctl show`` and ``journalctl``; a lab without systemd gives
its own commands in the same format (the local lab's control CLI does).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

from stackcheck import layers
from stackcheck.errors import cut_line
from stackcheck.lab import Host, Lab
from stackcheck.ssh import host_connection

#: s the status and journal commands may take on the host
TIMEOUT = 8
_MARK = "@@stackcheck-journal@@"


@dataclass
class UnitState:
    """A service as the host's service manager describes it."""

    service: str
    unit: str  # the manager's name for it: etcd.service (systemd), etcd (local lab)
    load: str = ""  # loaded, not-found, masked
    active: str = ""  # active, inactive, failed, activating, ...
    file_state: str = ""  # enabled, disabled, masked, ...
    since: str = ""  # when it entered its state, as the host says it
    journal: list[str] = field(default_factory=list)

    @property
    def word(self) -> str:
        """One word: active, inactive, failed, masked, absent (the host has no such unit)."""
        if self.load == "masked" or self.file_state.startswith("masked"):
            return "masked"
        if self.load == "not-found":
            return "absent"
        return self.active or "unknown"

    @property
    def present(self) -> bool:
        return self.word != "absent"

    def describe(self) -> str:
        """``etcd.service masked since 2026-12-03 08:01:02 UTC``."""
        since = f" since {self.since}" if self.since and self.word != "absent" else ""
        return f"{self.unit} {self.word}{since}"

    def last_log(self, limit: int = 110) -> str:
        """The last log line's message, quoted and cut to one short line ('' if none)."""
        lines = [line.strip() for line in self.journal if line.strip()
                 and not line.startswith("-- ")]  # journalctl's "-- No entries --"
        return f'last log: "{cut_line(log_message(lines[-1]), limit)}"' if lines else ""


_LOGFMT_MSG = re.compile(r'\bmsg="((?:[^"\\]|\\.)*)"')
_KLOG = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ [^\]]+\] (.*)$")


def log_message(line: str) -> str:
    """The message of a log line: ``msg`` of a JSON (etcd, zap) or logfmt (docker, logrus)
    line, the text of a klog line (Kubernetes); else the line."""
    if line.startswith("{"):
        try:
            data = json.loads(line)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("msg"):
            error = data.get("error") or data.get("err")
            return f"{data['msg']}" + (f": {error}" if error else "")
    found = _LOGFMT_MSG.search(line)
    if found:
        return found.group(1).replace('\\"', '"')
    klog = _KLOG.match(line)
    return klog.group(1) if klog else line


def parse_show(service: str, unit: str, text: str) -> UnitState:
    """``systemctl show``'s ``key=value`` lines as a UnitState."""
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    since = fields.get("StateChangeTimestamp", "").strip()
    parts = since.split(" ")
    if len(parts) == 4 and len(parts[0]) == 3:  # "Thu 2026-12-03 08:01:02 UTC": no weekday
        since = " ".join(parts[1:])
    return UnitState(
        service=service, unit=fields.get("Id", "").strip() or unit,
        load=fields.get("LoadState", "").strip(), active=fields.get("ActiveState", "").strip(),
        file_state=fields.get("UnitFileState", "").strip(), since=since,
    )


def unit_state(lab: Lab, host: Host, service: str, timeout: float = TIMEOUT
               ) -> UnitState | None:
    """What ``host``'s service manager says of ``service``; None when it cannot be asked
    (no SSH, or the status command failed)."""
    control = lab.control_for(host)
    unit = control.units.get(service, service)
    # both at once: on a lab without systemd each may be a slow-starting program
    script = (f"d=$(mktemp -d) || exit 1; "
              f"timeout {timeout:g} sh -c {shlex.quote(control.command('status', service))} "
              f">$d/status 2>/dev/null & "
              f"timeout {timeout:g} sh -c {shlex.quote(control.command('journal', service))} "
              f">$d/journal 2>/dev/null & wait; "
              f"cat $d/status; echo {_MARK}; cat $d/journal; rm -rf $d")
    try:
        result = host_connection(lab, host).run(f"sh -c {shlex.quote(script)} 2>/dev/null")
    except Exception:  # noqa: BLE001 - an unreachable host has no word to give
        return None
    show, _, journal = result.stdout.partition(_MARK)
    if "ActiveState=" not in show and "LoadState=" not in show:
        return None
    state = parse_show(service, unit, show)
    state.journal = journal.strip("\n").splitlines()
    return state


def explain(lab: Lab, host: Host, service: str, why: str) -> str:
    """``h3: etcd.service masked since … — does not answer (…); last log: "…"``: the finding
    ``why`` with the host's own word in front (just ``h3: why`` if the host cannot say)."""
    state = unit_state(lab, host, service)
    if state is None:
        return f"{host.name}: {why}"
    log = state.last_log() if state.word != "active" else ""
    return f"{host.name}: {state.describe()} — {why}" + (f"; {log}" if log else "")


def expected_services(lab: Lab, host: Host) -> list[str]:
    """The services ``host``'s roles imply (and sshd where the service control names it):
    control-plane units on masters only, kubelet and kube-proxy on nodes only."""
    out = ["sshd"] if "sshd" in lab.control_for(host).units else []
    for role in host.roles:
        out += layers.role_services().get(role, ())
    return list(dict.fromkeys(out))


def host_states(lab: Lab, host: Host, timeout: float = TIMEOUT) -> dict[str, str] | None:
    """service -> state word for every service ``host``'s roles imply, read with one SSH
    command; None when the host cannot be asked."""
    control = lab.control_for(host)
    wanted = expected_services(lab, host)
    script = "; ".join(
        f"echo {_MARK}{service}; timeout {timeout:g} sh -c "
        f"{shlex.quote(control.command('status', service))} 2>/dev/null" for service in wanted)
    try:
        result = host_connection(lab, host).run(f"sh -c {shlex.quote(script)}")
    except Exception:  # noqa: BLE001 - an unreachable host has no word to give
        return None
    out = {}
    for block in result.stdout.split(_MARK)[1:]:
        service, _, show = block.partition("\n")
        if "ActiveState=" in show or "LoadState=" in show:
            out[service.strip()] = parse_show(service, service, show).word
        else:
            out[service.strip()] = "unknown"
    return out
