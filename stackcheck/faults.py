"""Fault injection that always restores: every stopped service is journaled on disk.

A disruptive check stops services through the provisioner; the journal lists what is
stopped until it is started again. If a run dies mid-fault (Ctrl-C, kill -9), the next
run's preflight finds the journal and restarts what was left stopped.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

from stackcheck.lab import Host, Lab
from stackcheck.provisioner import Provisioner, ServiceResult


def journal_path(lab: Lab, root: Path) -> Path:
    base = lab.state_dir if lab.state_dir else root / ".stackcheck" / "faults"
    return Path(base) / f"faults-{lab.name}.json"


class FaultJournal:
    """Services currently stopped by stackcheck, as ``host/service`` entries in a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = FileLock(str(path) + ".lock", timeout=30)

    def _read(self) -> list[str]:
        return json.loads(self.path.read_text()) if self.path.exists() else []

    def _write(self, entries: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(sorted(set(entries))))

    def add(self, host: str, service: str) -> None:
        with self._lock:
            self._write([*self._read(), f"{host}/{service}"])

    def remove(self, host: str, service: str) -> None:
        with self._lock:
            self._write([e for e in self._read() if e != f"{host}/{service}"])

    def pending(self) -> list[tuple[str, str]]:
        with self._lock:
            return [tuple(e.split("/", 1)) for e in self._read()]  # type: ignore[misc]


class FaultError(RuntimeError):
    pass


def _why(result: ServiceResult) -> str:
    """The failed command's exit status (124: the remote ``timeout`` expired) and stderr."""
    return f"exit status {result.exit_status}: {result.stderr.strip()[-500:]}"


class Faults:
    """Stop and start services of a lab, journaled, through its provisioner."""

    def __init__(self, provisioner: Provisioner, lab: Lab, journal: FaultJournal) -> None:
        self.provisioner = provisioner
        self.lab = lab
        self.journal = journal

    def stop(self, host: Host, service: str) -> None:
        self.journal.add(host.name, service)
        result = self.provisioner.service(self.lab, host, service, "stop")
        if not result.ok:
            raise FaultError(f"could not stop {service} on {host.name}: {_why(result)}")

    def start(self, host: Host, service: str) -> None:
        result = self.provisioner.service(self.lab, host, service, "start")
        if not result.ok:
            raise FaultError(f"could not start {service} on {host.name}: {_why(result)}")
        self.journal.remove(host.name, service)

    @contextlib.contextmanager
    def stopped(self, hosts: list[Host], service: str) -> Iterator[None]:
        """Stop ``service`` on ``hosts``; start it again on exit, whatever happened."""
        try:
            for host in hosts:
                self.stop(host, service)
            yield
        finally:
            self.heal()

    def heal(self) -> list[str]:
        """Start every service the journal lists as stopped; returns what was restarted."""
        restarted, errors = [], []
        for host_name, service in self.journal.pending():
            try:
                self.start(self.lab.host(host_name), service)
                restarted.append(f"{host_name}/{service}")
            except (FaultError, KeyError) as exc:
                errors.append(str(exc))
        if errors:
            raise FaultError("; ".join(errors))
        return restarted
