"""Fault injection that always restores: every stopped service is journaled on disk.

A disruptive check stops services through the provisioner; the journal lists what is
stopped until it is started again. If a run dies mid-fault (Ctrl-C, kill -9), the next
run's preflight finds the journal and restarts what was left stopped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from stackcheck.errors import command_failure
from stackcheck.heal import Healer
from stackcheck.journal import JsonJournal, journal_file
from stackcheck.lab import Host, Lab
from stackcheck.provisioner import Provisioner, ServiceResult


def journal_path(lab: Lab, root: Path) -> Path:
    return journal_file(lab, root, "faults")


class FaultJournal(JsonJournal):
    """Services currently stopped by stackcheck, as ``host/service`` entries in a JSON file."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, [])

    def add(self, host: str, service: str) -> None:
        with self.edit() as entries:
            entries[:] = sorted({*entries, f"{host}/{service}"})

    def remove(self, host: str, service: str) -> None:
        with self.edit() as entries:
            entries[:] = sorted({e for e in entries if e != f"{host}/{service}"})

    def pending(self) -> list[tuple[str, str]]:
        return [tuple(e.split("/", 1)) for e in self.read()]  # type: ignore[misc]


class FaultError(RuntimeError):
    """A service could not be stopped or started; the message says what ran and printed."""


def _why(result: ServiceResult) -> str:
    """What ran on the host, its exit status and what it printed."""
    return command_failure(result.command, result.exit_status, result.stdout, result.stderr)


class Faults:
    """Stop and start services of a lab, journaled, through its provisioner."""

    def __init__(self, provisioner: Provisioner, lab: Lab, journal: FaultJournal) -> None:
        self.provisioner = provisioner
        self.lab = lab
        self.journal = journal

    def stop(self, host: Host, service: str) -> None:
        __tracebackhide__ = True  # a failure shows the check's frame, not this one
        self.journal.add(host.name, service)
        result = self.provisioner.service(self.lab, host, service, "stop")
        if not result.ok:
            raise FaultError(f"could not stop {service} on {host.name}: {_why(result)}")

    def start(self, host: Host, service: str) -> None:
        __tracebackhide__ = True
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
        __tracebackhide__ = True
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


def heal_interrupted(lab: Lab, provisioner: Provisioner, root: Path) -> list[str]:
    """Restart what an earlier, interrupted run left stopped (the journal lists it)."""
    return Faults(provisioner, lab, FaultJournal(journal_path(lab, root))).heal()


HEALER = Healer(heal_interrupted, done="restarted what an earlier run left stopped",
                failed="could not restore the lab", errors=(FaultError,), order=10)
