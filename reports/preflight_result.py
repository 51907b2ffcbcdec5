"""The preflight in the report: its own Allure result at the top, lines in the environment.

The result is failed when any layer is down or degraded, with one step per layer (what was
probed and what was seen), so the first thing a person sees of a broken lab is its cause.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from stackcheck.preflight import DOWN, OK, Verdict

ALLURE_ID = "lab-preflight"


def environment(verdict: Verdict | None) -> dict[str, str]:
    """``preflight.<layer>`` = ``status — summary``, for environment.properties."""
    if verdict is None:
        return {}
    return {f"preflight.{name}": f"{h.status} — {h.summary}" for name, h in verdict.layers.items()}


def _status(status: str) -> str:
    return "passed" if status == OK else "failed"


def result(verdict: Verdict, run_id: str, started_ms: float) -> dict:
    """An Allure result: epic lab, feature preflight, one step per layer."""
    stop = started_ms + verdict.elapsed_s * 1000
    broken = [f"{name}: {h.status} — {h.summary}" for name, h in verdict.layers.items()
              if h.status != OK]
    steps = [{"name": f"{name}: {h.status} — {h.summary}", "status": _status(h.status),
              "stage": "finished", "start": started_ms, "stop": stop}
             for name, h in verdict.layers.items()]
    data = {
        "uuid": str(uuid.uuid4()),
        "historyId": ALLURE_ID,
        "testCaseId": ALLURE_ID,
        "fullName": "stackcheck.preflight",
        "name": "Preflight: every layer the checks need answers",
        "status": "failed" if broken else "passed",
        "stage": "finished",
        "start": started_ms,
        "stop": stop,
        "steps": steps,
        "labels": [
            {"name": "as_id", "value": ALLURE_ID},
            {"name": "epic", "value": "lab"},
            {"name": "feature", "value": "preflight"},
            {"name": "severity", "value": "blocker"},
            {"name": "parentSuite", "value": "(lab)"},  # with the lab overview, at the top
            {"name": "suite", "value": "preflight"},
            {"name": "run_id", "value": run_id},
        ],
    }
    if broken:
        down = [line for line in broken if f": {DOWN} — " in line]
        data["statusDetails"] = {
            "message": "; ".join(down or broken),
            "trace": "\n".join(broken),
        }
    return data


def write(alluredir: Path, verdict: Verdict, run_id: str, started_ms: float | None = None
          ) -> Path:
    data = result(verdict, run_id, started_ms or time.time() * 1000)
    path = alluredir / f"{data['uuid']}-result.json"
    path.write_text(json.dumps(data, indent=2))
    return path
