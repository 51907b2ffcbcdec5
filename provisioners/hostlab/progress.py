"""Progress output on stderr with rich: one line per bring-up step and a summary."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

LAB_PREFIX = "local lab "


def _quote_name(title: str) -> str:
    """``local lab lab`` → ``local lab 'lab'``: the lab's name reads as a name."""
    name = title.removeprefix(LAB_PREFIX)
    if title.startswith(LAB_PREFIX) and name and not name.startswith(("'", '"')):
        return f"{LAB_PREFIX}{name!r}"
    return title


class Progress:
    """Spinner while a step runs, a checked line with its duration when it ends.

    Lines read ``✓ local lab 'lab': sshd on every host (0.31s)``.
    """

    def __init__(self, title: str) -> None:
        self.console = Console(stderr=True, highlight=False)
        self.title = _quote_name(title)
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
