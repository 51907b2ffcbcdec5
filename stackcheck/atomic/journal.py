"""Every host goes back to the deployment it started on: a journal on disk, and restore.

Before a check changes a host's deployments it records them in the journal
(``atomic-<lab>.json`` next to the lab's fault journal): the booted commit and the whole
layout, every deployment in boot order with its ``checksum.serial`` and origin file. The
entry is cleared once the host is back *as it was*: booted on the same deployment, the same
rollback (and pending) deployments behind it, the same origins and serials. If a run dies in
between (Ctrl-C, kill -9), :func:`heal` (the next run's preflight, or the suite before its
next disruptive check) restores what the journal lists.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stackcheck.atomic.backends import AtomicError, Backend, backend_for
from stackcheck.atomic.boot import REBOOT_TIMEOUT, reboot
from stackcheck.atomic.model import Status
from stackcheck.heal import Healer
from stackcheck.journal import JsonJournal, journal_file
from stackcheck.lab import Host, Lab
from stackcheck.provisioner import Provisioner


class RestoreError(RuntimeError):
    """A host could not be put back on its deployment; the message says where it is."""


@dataclass(frozen=True)
class Entry:
    """Where a host started: its booted commit, the origin it followed, may it be rebooted."""

    checksum: str
    origin: str | None
    reboot_allowed: bool
    #: every deployment in boot order: osname, checksum, serial, booted, origin (file text)
    layout: list[dict[str, Any]] = field(default_factory=list)


def snapshot(backend: Backend, status: Status, reboot_allowed: bool) -> Entry:
    """The journal entry for a host as it is now (its booted deployment and whole layout)."""
    booted = status.booted
    if booted is None:
        raise AtomicError(f"{backend.host}: not booted into an ostree deployment")
    origins = backend.origin_texts(status.deployments)
    layout = [{"osname": d.osname, "checksum": d.checksum, "serial": d.serial,
               "booted": d.booted, "origin": origin}
              for d, origin in zip(status.deployments, origins, strict=True)]
    return Entry(booted.checksum, booted.source, reboot_allowed, layout)


def layout_of(status: Status) -> list[str]:
    """``checksum.serial`` in boot order, the booted one starred (for comparing and saying)."""
    return [("*" if d.booted else "") + d.id for d in status.deployments]


def recorded_layout(entry: Entry) -> list[str]:
    return [("*" if d["booted"] else "") + f"{d['checksum']}.{d['serial']}"
            for d in entry.layout]


def journal_path(lab: Lab, root: Path) -> Path:
    return journal_file(lab, root, "atomic")


class DeploymentJournal(JsonJournal):
    """Hosts whose deployments a check is changing, as a JSON object in a file."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, {}, keep_empty=False, indent=2)

    def record(self, host: str, entry: Entry) -> None:
        """Note where ``host`` started (an older entry for it wins: that is the true start)."""
        with self.edit() as data:
            data.setdefault(host, asdict(entry))

    def clear(self, host: str) -> None:
        with self.edit() as data:
            data.pop(host, None)

    def pending(self) -> dict[str, Entry]:
        return {host: Entry(**value) for host, value in self.read().items()}


def restore(lab: Lab, provisioner: Provisioner, host: Host, entry: Entry,
            timeout: float = REBOOT_TIMEOUT) -> list[str]:
    """Put ``host`` back as ``entry`` found it (booted, then the layout); say what was done."""
    return restore_status(lab, provisioner, host, entry, timeout)[0]


def restore_status(lab: Lab, provisioner: Provisioner, host: Host, entry: Entry,
                   timeout: float = REBOOT_TIMEOUT) -> tuple[list[str], Status]:
    """:func:`restore`, and the host's deployments as last read (after the restore)."""
    backend = backend_for(lab, host, bypass_driver=True)  # putting back is never optional
    actions, status = _restore_booted(lab, provisioner, host, backend, entry, timeout)
    if entry.layout:
        done, status = _restore_layout(backend, entry, status)
        actions += done
    return actions, status


def _restore_booted(lab: Lab, provisioner: Provisioner, host: Host, backend: Backend,
                    entry: Entry, timeout: float) -> tuple[list[str], Status]:
    """Booted and default on ``entry``'s commit; what was done and the status last read."""
    status = backend.status()
    booted, default = status.booted, status.default
    if (booted is not None and booted.checksum == entry.checksum and default is not None
            and default.checksum == entry.checksum):
        return [], status
    actions: list[str] = []
    if default is None or default.checksum != entry.checksum:
        backend.make_default(entry.checksum, entry.origin)
        actions.append(f"made {entry.checksum} the default deployment")
    if booted is None or booted.checksum != entry.checksum:
        if not entry.reboot_allowed:
            raise RestoreError(
                f"{host.name}: booted {booted.checksum if booted else 'nothing'}, must reboot "
                f"into {entry.checksum} to be restored, but rebooting it is not allowed")
        record = reboot(lab, provisioner, host, timeout)
        actions.append(f"rebooted (boot id {record.before} -> {record.after})")
    final = backend.status()
    if (final.booted is None or final.booted.checksum != entry.checksum
            or final.default is None or final.default.checksum != entry.checksum):
        raise RestoreError(
            f"{host.name}: could not restore {entry.checksum}: booted "
            f"{final.booted.checksum if final.booted else 'nothing'}, default "
            f"{final.default.checksum if final.default else 'nothing'}")
    return actions, final


def _restore_layout(backend: Backend, entry: Entry, status: Status) -> tuple[list[str], Status]:
    """With the right deployment booted (``status``: as just read): the others back in
    place, with their origins; what was done and the status last read."""
    want = recorded_layout(entry)
    if layout_of(status) == want and _origins_match(backend, status, entry):
        return [], status
    booted = status.booted
    assert booted is not None  # _restore_booted made sure
    for index in reversed(range(len(status.deployments))):
        if status.deployments[index] is not booted:
            backend.undeploy(index, f"removing {status.deployments[index].id} to restore "
                                    "the layout")
    split = next(i for i, d in enumerate(entry.layout) if d["booted"])
    for dep in entry.layout[split + 1:]:
        backend.redeploy(dep["osname"], dep["checksum"], dep["origin"], as_default=False)
    for dep in reversed(entry.layout[:split]):
        backend.redeploy(dep["osname"], dep["checksum"], dep["origin"], as_default=True)
    status = backend.status()
    final = layout_of(status)
    if final != want:
        raise RestoreError(f"{backend.host}: deployments not as found: expected "
                           f"{' '.join(want)}, now {' '.join(final)} (* booted)")
    return [f"deployments put back as found: {' '.join(want)}"], status


def _origins_match(backend: Backend, status: Status, entry: Entry) -> bool:
    return backend.origin_texts(status.deployments) == [d["origin"] for d in entry.layout]


def heal(lab: Lab, provisioner: Provisioner, root: Path) -> list[str]:
    """Restore every host the journal lists (an earlier run was interrupted); say what was done."""
    journal = DeploymentJournal(journal_path(lab, root))
    done, errors = [], []
    for name, entry in journal.pending().items():
        try:
            actions = restore(lab, provisioner, lab.host(name), entry)
        except KeyError:
            errors.append(f"{name}: not in the lab's inventory; cannot restore {entry.checksum}")
            continue
        except Exception as exc:  # noqa: BLE001 - one host's failure must not hide the others
            errors.append(str(exc) if isinstance(exc, RestoreError | AtomicError)
                          else f"{name}: {type(exc).__name__}: {exc}")
            continue
        journal.clear(name)
        done.append(f"{name}: back on {entry.checksum}"
                    + (f" ({'; '.join(actions)})" if actions else ""))
    if errors:
        raise RestoreError("; ".join(errors))
    return done


HEALER = Healer(heal, done="put back on their ostree deployments",
                failed="could not put a host back on its ostree deployment",
                errors=(RestoreError,), order=20, separator="; ")
