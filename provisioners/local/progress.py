"""Progress output on stderr with rich: one line per bring-up step and a summary."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console


class Progress:
    """Spinner while a step runs, a checked line with its duration when it ends."""

    def __init__(self, title: str) -> None:
        self.console = Console(stderr=True, highlight=False)
        self.title = title
        self.started = time.monotonic()
        self.steps: dict[str, float] = {}

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        t0 = time.monotonic()
        with self.console.status(f"{self.title}: {what}…"):
            try:
                yield
            except BaseException:
                self.console.print(f"[red]✗[/] {self.title}: {what} failed "
                                   f"[dim]({time.monotonic() - t0:.2f}s)[/]")
                raise
        self.steps[what] = time.monotonic() - t0
        self.console.print(f"[green]✓[/] {self.title}: {what} [dim]({self.steps[what]:.2f}s)[/]")

    def note(self, text: str) -> None:
        self.console.print(f"[yellow]![/] {self.title}: {text}")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def summary(self, text: str) -> None:
        self.console.print(f"[bold]{self.title}[/]: {text} in {self.elapsed:.1f}s")
