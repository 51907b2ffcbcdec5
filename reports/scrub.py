"""Redact what allure-pytest writes by itself: failure messages, tracebacks, captured output.

A check's own attachments go through ``stackcheck_reports.evidence`` (redacted when made), and the
secret scan fails the run loudly if one still leaks. What Allure records on its own (the
exception text and traceback of a failure, the captured stdout/stderr/log) can quote a
secret a check never meant to show, so the controller rewrites it once the workers are done.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stackcheck_reports.redact import redact

#: attachment names allure-pytest gives to captured output
CAPTURED = frozenset({"stdout", "stderr", "log"})


def _scrub_details(node: dict[str, Any]) -> bool:
    """Redact ``statusDetails`` of a result or step and of its steps; True if one changed."""
    changed = False
    details = node.get("statusDetails") or {}
    for key in ("message", "trace"):
        value = details.get(key)
        if isinstance(value, str) and (clean := redact(value)) != value:
            details[key] = clean
            changed = True
    for step in node.get("steps") or []:
        changed |= _scrub_details(step)
    return changed


def _captured_sources(node: dict[str, Any]) -> set[str]:
    sources = {a["source"] for a in node.get("attachments") or []
               if a.get("name") in CAPTURED and a.get("source")}
    for step in node.get("steps") or []:
        sources |= _captured_sources(step)
    return sources


def scrub(alluredir: Path, since_ms: float = 0) -> int:
    """Redact failure texts and captured output of results written since ``since_ms``.

    Returns how many files were rewritten.
    """
    rewritten = 0
    files = [*alluredir.glob("*-result.json"), *alluredir.glob("*-container.json")]
    for path in sorted(files):
        if path.stat().st_mtime * 1000 < since_ms:
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        nodes = [data, *(data.get("befores") or []), *(data.get("afters") or [])]
        changed = False
        sources: set[str] = set()
        for node in nodes:
            changed |= _scrub_details(node)
            sources |= _captured_sources(node)
        if changed:
            path.write_text(json.dumps(data))
            rewritten += 1
        for source in sources:
            attachment = alluredir / source
            try:
                text = attachment.read_text()
            except (OSError, UnicodeDecodeError):
                continue
            if (clean := redact(text)) != text:
                attachment.write_text(clean)
                rewritten += 1
    return rewritten
