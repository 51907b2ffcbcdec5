"""A run's files the picture reads: ``preflight.json`` and ``evidence/pingmatrix.json``.

Both are optional (older runs, ``--collect-only``, a lab without the layer): an absent file
reads as None; a malformed one as None plus a note saying why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stackcheck.picture.model import PING_STATUSES, PingMatrix, PreflightLayer

PREFLIGHT = "preflight.json"
PINGMATRIX = "evidence/pingmatrix.json"


def _load(path: Path, notes: list[str]) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        notes.append(f"{path.name} unreadable: {exc}")
        return None


def read_preflight(run_dir: Path, notes: list[str]) -> dict[str, PreflightLayer] | None:
    data = _load(Path(run_dir) / PREFLIGHT, notes)
    if data is None:
        return None
    try:
        return {str(name): PreflightLayer(ok=bool(layer.get("ok")),
                                          summary=str(layer.get("summary", "")),
                                          down=[str(h) for h in layer.get("down") or []])
                for name, layer in (data.get("layers") or {}).items()}
    except (AttributeError, TypeError) as exc:
        notes.append(f"{PREFLIGHT}: unexpected layout ({exc})")
        return None


def read_pingmatrix(run_dir: Path, notes: list[str]) -> PingMatrix | None:
    data = _load(Path(run_dir) / PINGMATRIX, notes)
    if data is None:
        return None
    try:
        pairs: dict[tuple[str, str], tuple[str, str]] = {}
        for key, value in (data.get("pairs") or {}).items():
            source, sep, target = str(key).partition("->")
            status = str(value.get("status", ""))
            if sep and status in PING_STATUSES:
                pairs[(source, target)] = (status, str(value.get("detail", "")))
        hosts = [str(h) for h in data.get("hosts") or []]
        for source, target in pairs:
            hosts += [h for h in (source, target) if h not in hosts]
        return PingMatrix(kind=str(data.get("kind", "?")), hosts=hosts, pairs=pairs)
    except (AttributeError, TypeError) as exc:
        notes.append(f"pingmatrix.json: unexpected layout ({exc})")
        return None


def latest_run_dir(runs: Path, lab_name: str) -> Path | None:
    """The newest run folder under ``runs`` whose ``lab.json`` names ``lab_name``."""
    if not runs.is_dir():
        return None
    for run_dir in sorted(runs.iterdir(), reverse=True):  # run ids start with the time
        try:
            if json.loads((run_dir / "lab.json").read_text()).get("name") == lab_name:
                return run_dir
        except (OSError, ValueError, AttributeError):
            continue
    return None
