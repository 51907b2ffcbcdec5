"""What a check leaves in the Allure report: steps, attachments, measurements.

Every text goes through :func:`reports.redact.redact` first. Without an active
Allure plugin (no ``--alluredir``) the calls do nothing.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import allure

from reports.redact import redact, redact_obj

MEASUREMENT_LABEL = "measurement"


def step(text: str) -> Any:
    """``with step("stop the etcd leader"):`` — an Allure step with a redacted title."""
    return allure.step(redact(text))


def attach_text(name: str, text: str) -> None:
    allure.attach(redact(text), name=name, attachment_type=allure.attachment_type.TEXT)


def attach_json(name: str, obj: Any) -> None:
    body = json.dumps(redact_obj(obj), indent=2, sort_keys=True, default=str)
    allure.attach(redact(body), name=name, attachment_type=allure.attachment_type.JSON)


def attach_svg(name: str, svg: str) -> None:
    """A picture drawn by the project (e.g. an etcd traffic timeline)."""
    allure.attach(redact(svg), name=name, attachment_type=allure.attachment_type.SVG)


def attach_html(name: str, page: str) -> None:
    """A small HTML page drawn by the project (e.g. a ping matrix)."""
    allure.attach(redact(page), name=name, attachment_type=allure.attachment_type.HTML)


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
    allure.attach(table_html(rows, header), name=name, attachment_type=allure.attachment_type.HTML)


def measure(name: str, seconds: float) -> None:
    """Record a named timing (e.g. ``etcd failover``) for the regression report's trends."""
    allure.dynamic.label(MEASUREMENT_LABEL, f"{name}={seconds:.6g}")
    attach_text(f"measurement: {name}", f"{name}: {seconds:.3f} s")
