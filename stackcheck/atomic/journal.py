"""Every host goes back to the deployment it started on: a journal on disk, and restore.

Before a check changes a host's deployments it records the booted commit in the journal
(``atomic-<lab>.json`` next to the lab's fault journal); the entry is cleared once the host
is back. If a run dies in between (Ctrl-C, kill -9), :func:`heal` (the next run's preflight,
or the suite before its next disruptive check) restores what the journal lists.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from stackcheck.atomic.backends import AtomicError, backend_for
from stackcheck.atomic.boot import REBOOT_TIMEOUT, reboot
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
    """Put ``host`` back on ``entry.checksum`` (default and booted); return what was done."""
    backend = backend_for(lab, host)
    status = backend.status()
    booted, default = status.booted, status.default
    if (booted is not None and booted.checksum == entry.checksum and default is not None
            and default.checksum == entry.checksum):
        return []
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
    return actions


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
