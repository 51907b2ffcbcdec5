"""Every host goes back to the deployment it started on: a journal on disk, and restore.

Before a check changes a host's deployments it records the booted commit in the journal
(``atomic-<lab>.json`` next to the lab's fault journal); the entry is cleared once the host
is back. If a run dies in between (Ctrl-C, kill -9), :func:`heal` (the next run's preflight,
or the suite before its next disruptive check) restores what the journal lists.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from stackcheck.atomic.backends import AtomicError, backend_for
from stackcheck.atomic.boot import REBOOT_TIMEOUT, reboot
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
    base = lab.state_dir if lab.state_dir else root / ".stackcheck" / "faults"
    return Path(base) / f"atomic-{lab.name}.json"


class DeploymentJournal:
    """Hosts whose deployments a check is changing, as a JSON object in a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = FileLock(str(path) + ".lock", timeout=30)

    def _read(self) -> dict[str, dict]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def _write(self, data: dict[str, dict]) -> None:
        if not data:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(data, indent=2, sort_keys=True))

    def record(self, host: str, entry: Entry) -> None:
        """Note where ``host`` started (an older entry for it wins: that is the true start)."""
        with self._lock:
            data = self._read()
            data.setdefault(host, asdict(entry))
            self._write(data)

    def clear(self, host: str) -> None:
        with self._lock:
            data = self._read()
            data.pop(host, None)
            self._write(data)

    def pending(self) -> dict[str, Entry]:
        with self._lock:
            return {host: Entry(**value) for host, value in self._read().items()}


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
