"""What a check leaves in the Allure report: steps, attachments, measurements.

Every text goes through :func:`stackcheck_reports.redact.redact` first. Without an active
Allure plugin (no ``--alluredir``) the calls do nothing.
"""

from __future__ import annotations

import contextlib
import html
import json
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import allure

from stackcheck_reports.redact import redact, redact_obj

MEASUREMENT_LABEL = "measurement"

# --- evidence made in a helper thread, replayed into its own check ---------------------------
# A rolling wave runs one host's check per thread; Allure would put every thread's steps into
# the check that started the wave. A thread that ``captured()`` its evidence keeps it in a
# list, and the host's own check ``replay()``s it.

_local = threading.local()


def _sink() -> list | None:
    return getattr(_local, "events", None)


@contextlib.contextmanager
def captured() -> Iterator[list]:
    """This thread's evidence goes to the yielded list instead of the report."""
    events: list = []
    _local.events = events
    try:
        yield events
    finally:
        _local.events = None


class _CapturedStep:
    def __init__(self, events: list, title: str) -> None:
        self.events, self.title = events, title

    def __enter__(self) -> None:
        self.events.append(("step", self.title))

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        self.events.append(("end", exc))


def replay(events: Sequence[tuple]) -> None:
    """Put captured evidence into the current check, steps nested as they were."""
    open_steps: list[Any] = []
    for event in events:
        if event[0] == "step":
            cm = allure.step(event[1])
            cm.__enter__()
            open_steps.append(cm)
        elif event[0] == "end" and open_steps:
            exc = event[1]
            open_steps.pop().__exit__(type(exc) if exc else None, exc, None)
        elif event[0] == "attach":
            allure.attach(event[1], name=event[2], attachment_type=event[3])
        elif event[0] == "label":
            allure.dynamic.label(event[1], event[2])
    while open_steps:
        open_steps.pop().__exit__(None, None, None)


def _attach(body: str, name: str, kind: Any) -> None:
    sink = _sink()
    if sink is not None:
        sink.append(("attach", body, name, kind))
    else:
        allure.attach(body, name=name, attachment_type=kind)


def step(text: str) -> Any:
    """``with step("stop the etcd leader"):`` — an Allure step with a redacted title."""
    sink = _sink()
    if sink is not None:
        return _CapturedStep(sink, redact(text))
    return allure.step(redact(text))


def attach_text(name: str, text: str) -> None:
    _attach(redact(text), name, allure.attachment_type.TEXT)


def attach_json(name: str, obj: Any) -> None:
    body = json.dumps(redact_obj(obj), indent=2, sort_keys=True, default=str)
    _attach(redact(body), name, allure.attachment_type.JSON)


def attach_svg(name: str, svg: str) -> None:
    """A picture drawn by the project (e.g. an etcd traffic timeline)."""
    _attach(redact(svg), name, allure.attachment_type.SVG)


def attach_html(name: str, page: str) -> None:
    """A small HTML page drawn by the project (e.g. a ping matrix)."""
    _attach(redact(page), name, allure.attachment_type.HTML)


def _normalise(rows: Iterable[Mapping[str, Any] | Sequence[Any]],
               header: Sequence[str] | None) -> tuple[list[str], list[list[str]]]:
    rows = list(rows)
    if rows and isinstance(rows[0], Mapping):
        columns = list(header or dict.fromkeys(k for row in rows for k in row))
        body = [[str(row.get(c, "")) for c in columns] for row in rows]
        return columns, body
    body = [[str(cell) for cell in row] for row in rows]
    if header is None and body:
        return body[0], body[1:]
    return list(header or []), body


def table_html(rows: Iterable[Mapping[str, Any] | Sequence[Any]],
               header: Sequence[str] | None = None) -> str:
    """A small self-contained HTML table (e.g. a ping matrix: hosts by hosts)."""
    columns, body = _normalise(rows, header)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body
    )
    style = ("<style>table{border-collapse:collapse;font:13px sans-serif}"
             "td,th{border:1px solid #ccc;padding:2px 8px}th{background:#eee}</style>")
    return f"{style}<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>"


def attach_table(name: str, rows: Iterable[Mapping[str, Any] | Sequence[Any]],
                 header: Sequence[str] | None = None) -> None:
    rows = [redact_obj(dict(r)) if isinstance(r, Mapping) else redact_obj(list(r)) for r in rows]
    _attach(table_html(rows, header), name, allure.attachment_type.HTML)


def measure(name: str, seconds: float) -> None:
    """Record a named timing (e.g. ``etcd failover``) for the regression report's trends."""
    sink = _sink()
    if sink is not None:
        sink.append(("label", MEASUREMENT_LABEL, f"{name}={seconds:.6g}"))
    else:
        allure.dynamic.label(MEASUREMENT_LABEL, f"{name}={seconds:.6g}")
    attach_text(f"measurement: {name}", f"{name}: {seconds:.3f} s")
