"""Progress lines on stderr while binaries are found or built (rich, one line per event)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console


def duration(seconds: float) -> str:
    """``7.2s``, ``4m58s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def size(nbytes: int) -> str:
    """``1.4 GB``, ``312 MB``."""
    if nbytes >= 1 << 30:
        return f"{nbytes / (1 << 30):.1f} GB"
    return f"{nbytes / (1 << 20):.0f} MB"


class Step:
    """A running step; set ``detail`` to add it to the step's closing line."""

    detail: str = ""


class Progress:
    """Reports steps (start, end with elapsed time) and heartbeats during long commands."""

    def __init__(self, console: Console | None = None, *, heartbeat: float = 15.0) -> None:
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self.heartbeat = heartbeat

    @classmethod
    def quiet(cls) -> Progress:
        """A reporter that prints nothing (tests, library callers who log elsewhere)."""
        return cls(Console(file=io.StringIO(), highlight=False), heartbeat=3600)

    def note(self, message: str) -> None:
        self.console.print(f"[dim]k8s:[/dim] {message}")

    @contextmanager
    def step(self, title: str) -> Iterator[Step]:
        """Print ``title`` now and again when it ends, with the elapsed time and any detail."""
        started = time.monotonic()
        self.console.print(f"[bold]→[/bold] {title} …")
        current = Step()
        try:
            yield current
        except BaseException:
            spent = duration(time.monotonic() - started)
            self.console.print(f"[red]✗[/red] {title} failed after {spent}")
            raise
        spent = duration(time.monotonic() - started)
        extra = f", {current.detail}" if current.detail else ""
        self.console.print(f"[green]✓[/green] {title} [dim]{spent}{extra}[/dim]")

    def beat(self, title: str, elapsed: float, rss: int) -> None:
        """One heartbeat line while a long command runs."""
        memory = f", {size(rss)} in use" if rss else ""
        self.console.print(f"  [dim]… {title}: {duration(elapsed)}{memory}[/dim]")
