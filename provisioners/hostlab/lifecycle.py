"""The ``create()`` skeleton of a lab on this machine, with its failure policy.

One bring-up, whoever the provisioner: under the state folder's ``create.lock``, reuse a
healthy lab built with the same options, else tear down what is recorded there; record the new
lab; build it; on failure tear it down (unless ``keep_on_failure``) and raise one
:class:`ProvisionerError` that says what failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from stackcheck.lab import InventoryError, Lab, load_inventory
from stackcheck_provisioners.base import ProvisionConfig, ProvisionerError
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
    config = data.get("config") or {}
    layout = Layout.from_options(state_dir, data.get("run_id", ""), config.get("hosts", 3),
                                 config)
    return etcd.healthy(layout)


def _nothing(state_dir: Path) -> None:
    """No step before the teardown."""


@dataclass(frozen=True)
class LabKind:
    """What the skeleton needs to know of one provisioner's labs."""

    #: the provisioner's name (``local``, ``machines``): recorded, and in messages ("local lab")
    name: str
    #: what its hosts are called in progress lines ("hosts", "machines")
    noun: str
    #: True if the lab recorded in a state folder is ready and running
    healthy: Callable[[Path], bool] = field(default=running)
    #: runs before any teardown of a recorded lab (e.g. power the machines off)
    before_teardown: Callable[[Path], None] = field(default=_nothing)

    @property
    def title(self) -> str:
        return f"{self.name} lab"

    def teardown_locked(self, state_dir: Path) -> list[str]:
        """Tear down what ``state_dir`` records, the caller holding ``create.lock``."""
        self.before_teardown(state_dir)
        return destroy_locked(state_dir, keep=(CREATE_LOCK,))


def keep_on_failure(options: dict[str, Any]) -> bool:
    """The ``keep_on_failure`` option: leave a failed bring-up for a look."""
    return str(options.get("keep_on_failure", "")).lower() in ("1", "true", "yes", "on")


def create_lab(kind: LabKind, config: ProvisionConfig, layout: Layout, wanted: dict[str, Any],
               progress: Progress, build: Callable[[], Lab]) -> Lab:
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
            lab = _build(kind, config, state_dir, progress, build)
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


def _build(kind: LabKind, config: ProvisionConfig, state_dir: Path, progress: Progress,
           build: Callable[[], Lab]) -> Lab:
    """Run ``build``; on failure tear down (unless kept) and raise one ProvisionerError."""
    try:
        return build()
    except BaseException as exc:
        progress.note(f"bring-up failed, tearing down: {exc}")
        if not keep_on_failure(dict(config.options)):
            kind.teardown_locked(state_dir)
        if isinstance(exc, ProvisionerError):
            raise
        if isinstance(exc, Exception):
            raise ProvisionerError(
                f"{kind.title} bring-up failed: {type(exc).__name__}: {exc}") from exc
        raise
