"""The ``create()`` skeleton of a lab on this machine, with its failure policy, and its end.

One bring-up, whoever the provisioner: under the state folder's ``create.lock``, reuse a
healthy lab built with the same options, else tear down what is recorded there; record the new
lab; build it; on failure tear it down (unless ``keep_on_failure``) and raise one
:class:`ProvisionerError` that says what failed. One teardown too
(:class:`HostLabProvisioner`'s ``destroy()``, ``abort()`` and ``lab down``), from the state
file alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from filelock import FileLock

from stackcheck.lab import InventoryError, Lab, load_inventory
from stackcheck_provisioners.base import (
    ProvisionConfig,
    Provisioner,
    ProvisionerError,
    ProvisionerOptions,
)
from stackcheck_provisioners.hostlab import etcd, network, state
from stackcheck_provisioners.hostlab.layout import Layout
from stackcheck_provisioners.hostlab.proc import alive
from stackcheck_provisioners.hostlab.progress import Progress
from stackcheck_provisioners.hostlab.teardown import CREATE_LOCK, destroy_locked

LOCK_TIMEOUT = 600


def running(state_dir: Path) -> bool:
    """True if the lab recorded in ``state_dir`` is ready: its processes alive, its
    namespaces there, its etcd cluster healthy."""
    data = state.read(state_dir)
    if not data or data.get("status") != "ready":
        return False
    if not all(alive(r.get("pid"), r.get("start")) for r in data.get("processes", {}).values()):
        return False
    if not {r["name"] for r in state.resources(data, "netns")} <= network.netns_list():
        return False
    try:
        layout = Layout.recorded(state_dir, data.get("run_id", ""), data.get("config") or {})
    except (KeyError, ValueError):  # recorded by another version: not ours to reuse
        return False
    return etcd.healthy(layout)


@contextlib.contextmanager
def _quiet(what: str) -> Iterator[None]:
    """A teardown step without a progress line."""
    yield


@dataclass(frozen=True)
class LabKind:
    """What the skeleton needs to know of one provisioner's labs."""

    #: the provisioner's name (``local``, ``machines``): recorded, and in messages ("local lab")
    name: str
    #: what its hosts are called in progress lines ("hosts", "machines")
    noun: str
    #: True if the lab recorded in a state folder is ready and running
    healthy: Callable[[Path], bool] = field(default=running)
    #: runs before any teardown of a recorded lab (e.g. power the machines off) ...
    before_teardown: Callable[[Path], None] | None = None
    #: ... and its progress line
    before_teardown_step: str = ""

    @property
    def title(self) -> str:
        return f"{self.name} lab"

    def teardown_locked(self, state_dir: Path, progress: Progress | None = None) -> list[str]:
        """Tear down what ``state_dir`` records, the caller holding ``create.lock``; return
        the problems left (empty: clean)."""
        step = progress.step if progress else _quiet
        if self.before_teardown is not None:
            with step(self.before_teardown_step):
                self.before_teardown(state_dir)
        with step("remove processes, namespaces, cgroups, folders"):
            return destroy_locked(state_dir, keep=(CREATE_LOCK,))

    def destroy(self, state_dir: Path | str, progress: Progress | None = None) -> list[str]:
        """Tear down the lab recorded in ``state_dir``; return problems left (empty = clean).

        Works from the state file alone (after a crash or kill -9 of the harness). Waits for
        a bring-up running in another live process to finish first (``create.lock``).
        """
        state_dir = Path(state_dir)
        data = state.read(state_dir)
        if data is None:
            return []
        with FileLock(str(state_dir / CREATE_LOCK), timeout=LOCK_TIMEOUT):
            problems = self.teardown_locked(state_dir, progress)
        if not problems:
            # a create() waiting on this lock sees no lab and builds a new one: fine
            (state_dir / CREATE_LOCK).unlink(missing_ok=True)
            if data.get("created_state_dir"):
                with contextlib.suppress(OSError):
                    state_dir.rmdir()
        return problems


def create_lab(kind: LabKind, options: ProvisionerOptions, layout: Layout,
               wanted: dict[str, Any], progress: Progress, build: Callable[[], Lab]) -> Lab:
    """Reuse the healthy lab of ``layout`` recorded with options ``wanted``, or build it.

    ``build`` brings the lab up from the fresh state file; if it raises, what it made is torn
    down (unless ``keep_on_failure``) and the error comes out as one ``ProvisionerError``.
    """
    state_dir = layout.state_dir
    created = not state_dir.exists()
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(state_dir / CREATE_LOCK), timeout=LOCK_TIMEOUT):
            lab = _reuse_or_clear(kind, state_dir, wanted, layout.inventory, progress)
            if lab is not None:
                return lab
            state.new(state_dir, layout.run_id, layout.name, wanted)
            with state.edit(state_dir) as st:
                st["created_state_dir"] = created
                st["provisioner"] = kind.name
            lab = _build(kind, options.keep_on_failure, state_dir, progress, build)
    except BaseException:
        if created and state.read(state_dir) is None:  # torn down: leave no empty folder
            (state_dir / CREATE_LOCK).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                state_dir.rmdir()
        raise
    progress.summary(f"{len(lab.hosts)} {kind.noun} up")
    return lab


def _reuse_or_clear(kind: LabKind, state_dir: Path, wanted: dict[str, Any], inventory: Path,
                    progress: Progress) -> Lab | None:
    """The running lab if it was built with ``wanted`` and is healthy; else clear the folder."""
    old = state.read(state_dir)
    if old is None:
        return None
    if old.get("config") == wanted and kind.healthy(state_dir):
        try:
            lab = load_inventory(inventory)
        except InventoryError:
            lab = None
        if lab is not None:
            lab.owned = False
            progress.summary(f"reusing the running lab ({len(lab.hosts)} {kind.noun})")
            return lab
    progress.note("a stale or different lab is recorded here: tearing it down")
    problems = kind.teardown_locked(state_dir)
    if problems:
        raise ProvisionerError(f"could not remove the old lab: {'; '.join(problems)}")
    return None


def _build(kind: LabKind, keep_on_failure: bool, state_dir: Path, progress: Progress,
           build: Callable[[], Lab]) -> Lab:
    """Run ``build``; on failure tear down (unless kept) and raise one ProvisionerError."""
    try:
        return build()
    except BaseException as exc:
        progress.note(f"bring-up failed, tearing down: {exc}")
        if not keep_on_failure:
            kind.teardown_locked(state_dir)
        if isinstance(exc, ProvisionerError):
            raise
        if isinstance(exc, Exception):
            raise ProvisionerError(
                f"{kind.title} bring-up failed: {type(exc).__name__}: {exc}") from exc
        raise


class HostLabProvisioner(Provisioner):
    """The end of a lab on this machine, whoever built it: ``destroy()``, ``abort()`` and
    ``stackcheck lab down`` remove what its state file records (also after a crash)."""

    #: what the lifecycle needs to know of this provisioner's labs
    kind: ClassVar[LabKind]

    def down(self, state_dir: Path, recorded: Lab | None) -> None:
        """Tear down from ``state.json`` alone, inventory or not (crash-safe)."""
        self.abort(ProvisionConfig(run_id="down", state_dir=Path(state_dir)))

    def destroy(self, lab: Lab) -> None:
        if lab.state_dir is None:
            raise ProvisionerError("this lab has no state_dir: nothing to destroy")
        from stackcheck import ssh

        for host in lab.hosts:
            ssh.close(lab, host)
        self._remove(Path(lab.state_dir), lab.name)

    def abort(self, config: ProvisionConfig) -> None:
        """Remove whatever the state folder records (an interrupted create, or ``lab down``)."""
        from stackcheck.ssh import close_all

        close_all()  # no lab model here: a connection to a host of the old lab must not stay
        state_dir = Path(config.state_dir)
        data = state.read(state_dir)
        if data is not None:
            self._remove(state_dir, data.get("lab") or state_dir.name)

    def _remove(self, state_dir: Path, name: str) -> None:
        progress = Progress(f"{self.kind.title} {name}")
        problems = self.kind.destroy(state_dir, progress)
        if problems:
            raise ProvisionerError(f"teardown left: {'; '.join(problems)}")
        progress.summary("destroyed")
