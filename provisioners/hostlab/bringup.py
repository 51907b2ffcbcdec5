"""A lab's bring-up as named phases: each a short method, run in order in one thread pool.

A provisioner of the kit subclasses :class:`PhasedBringUp`: it records its plan in the state
file before anything runs, lists its phases (each shows itself as progress steps), and makes
the lab's model; :meth:`PhasedBringUp.run` runs them and publishes the inventory.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from stackcheck.lab import Lab, write_inventory
from stackcheck_provisioners.hostlab import state
from stackcheck_provisioners.hostlab.layout import Layout
from stackcheck_provisioners.hostlab.progress import Progress


class PhasedBringUp(ABC):
    """One lab's bring-up; ``env`` becomes the inventory's environment."""

    def __init__(self, layout: Layout, progress: Progress) -> None:
        self.layout = layout
        self.progress = progress
        self.sd = layout.state_dir
        self.hosts = layout.hosts
        self.env: dict[str, str] = {}
        self.pool: ThreadPoolExecutor | None = None

    @abstractmethod
    def record_plan(self) -> None:
        """What the state file must hold before anything runs (hosts, folders)."""

    @abstractmethod
    def phases(self) -> list[Callable[[], None]]:
        """The phases in order (each one short; its progress lines say what it did)."""

    @abstractmethod
    def lab_model(self) -> Lab:
        """The lab as the harness sees it, once every phase ran."""

    def run(self, workers: int) -> Lab:
        """Record the plan, run every phase (background work on ``workers`` threads), publish.
        The caller tears the lab down if this raises."""
        self.record_plan()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            self.pool = pool
            for phase in self.phases():
                phase()
        return self.publish()

    def publish(self) -> Lab:
        """The Lab model, written as the inventory; the state file says the lab is ready."""
        lab = self.lab_model()
        write_inventory(lab, self.layout.inventory)
        with state.edit(self.sd) as st:
            st["status"] = "ready"
            st["environment"] = self.env
            st["ready_at"] = time.time()
            st["pid"] = os.getpid()
        return lab

    def _pool(self) -> ThreadPoolExecutor:
        assert self.pool is not None, "phases run inside run()'s thread pool"
        return self.pool
