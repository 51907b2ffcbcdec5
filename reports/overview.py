"""The lab overview in the Allure report: the lab picture as one result at the top.

The result "Lab overview" (parentSuite ``(lab)``) carries the picture as an SVG attachment
"lab picture" and inline in its description (Allure 3 shows it there; Allure 2 strips
images from descriptions, so there it is the attachment); it is ``failed`` when the picture
shows a failed part, with the problems as its message. The picture is also written next to
the results as ``lab-overview.svg``. The regression store does not count it as a check.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from pathlib import Path

from stackcheck.picture.model import Snapshot
from stackcheck.picture.svg import render

#: Label that marks the overview result (the store skips it).
OVERVIEW_LABEL = "stackcheck_overview"
SVG_NAME = "lab-overview.svg"
TITLE = "Lab overview"
#: Its place in the suite tree: "(lab)" sorts before every layer by name (Allure 2's default
#: order); Allure 3 sorts by start time and the overview starts first.
SUITE = "(lab)"


def is_overview(result: dict) -> bool:
    return any(label.get("name") == OVERVIEW_LABEL for label in result.get("labels", []))


def _description(svg: str) -> str:
    """The picture inline: an ``<img>`` with a data URI (report viewers strip inline SVG)."""
    data = base64.b64encode(svg.encode()).decode()
    return (f'<p>The lab as this run saw it at its end: failed parts are red, hosts the '
            f'preflight found down are crossed out. The picture is the "lab picture" '
            f'attachment below.</p>'
            f'<img alt="lab picture" style="max-width:100%" '
            f'src="data:image/svg+xml;base64,{data}"/>')


def write(alluredir: Path, snap: Snapshot, *, started_ms: float | None = None) -> Path:
    """Write the picture and its Allure result into ``alluredir``; return the SVG's path."""
    alluredir.mkdir(parents=True, exist_ok=True)
    svg = render(snap)
    picture = alluredir / SVG_NAME
    picture.write_text(svg)
    result_id = str(uuid.uuid4())
    attachment = f"{uuid.uuid4()}-attachment.svg"
    (alluredir / attachment).write_text(svg)
    problems = snap.problems()
    now = time.time() * 1000
    start = (started_ms or now) - 1  # first in time order; before the run's own checks
    history_id = hashlib.md5(f"stackcheck-lab-overview-{snap.lab}".encode()).hexdigest()
    result = {
        "uuid": result_id,
        "historyId": history_id,
        "testCaseId": history_id,
        "fullName": f"stackcheck.lab_overview.{snap.lab}",
        "name": TITLE,
        "status": "failed" if problems else "passed",
        "statusDetails": {"message": "\n".join(problems)} if problems else {},
        "stage": "finished",
        "description": None,
        "descriptionHtml": _description(svg),
        "start": int(start),
        "stop": int(start) + 1,  # drawn at the end; placed first
        "labels": [
            {"name": "parentSuite", "value": SUITE},
            {"name": "suite", "value": "overview"},
            {"name": "epic", "value": "lab"},
            {"name": "feature", "value": "overview"},
            {"name": "severity", "value": "blocker"},
            {"name": OVERVIEW_LABEL, "value": snap.lab},
        ],
        "parameters": [],
        "attachments": [{"name": "lab picture", "source": attachment, "type": "image/svg+xml"}],
        "steps": [],
    }
    result = {k: v for k, v in result.items() if v is not None}
    (alluredir / f"{result_id}-result.json").write_text(json.dumps(result, indent=2) + "\n")
    shown = {"name": "lab picture", "source": attachment, "type": "image/svg+xml",
             "timestamp": int(now)}  # Allure 3's "Global Attachments" tab
    (alluredir / f"{uuid.uuid4()}-globals.json").write_text(json.dumps({"attachments": [shown]}))
    return picture


def layers_ran(alluredir: Path, since_ms: float) -> set[str] | None:
    """The suite layers (epics) of the checks whose results this run wrote; None when it
    wrote none (nothing to narrow the picture to)."""
    layers: set[str] = set()
    for path in alluredir.glob("*-result.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if data.get("start", 0) < since_ms or is_overview(data):
            continue
        if any(label.get("name") == "feature" and label.get("value") == "preflight"
               and label_epic(data) == "lab" for label in data.get("labels", [])):
            continue  # the preflight's own result, not a layer's check
        epic = label_epic(data)
        if epic:
            layers.add(epic)
    return layers or None


def label_epic(result: dict) -> str:
    return next((label.get("value", "") for label in result.get("labels", [])
                 if label.get("name") == "epic"), "")


def for_session(config, alluredir: Path, started_ms: float) -> Path | None:
    """The overview of a pytest session (controller only): probe the lab if this run
    provisioned it, read the run's preflight and ping matrix; never fails the run."""
    from stackcheck.picture.probe import gather
    from stackcheck_reports.session import LAB_KEY, PROVISIONER_KEY, RUN_DIR_KEY, RUN_ID_KEY

    lab = config.stash.get(LAB_KEY, None)
    if lab is None:
        return None
    provisioner = config.stash.get(PROVISIONER_KEY, None)
    run_dir = config.stash.get(RUN_DIR_KEY, None)
    try:
        snap = gather(lab, status=provisioner.status if provisioner else None, run_dir=run_dir,
                      run_id=config.stash.get(RUN_ID_KEY, None), probe=provisioner is not None,
                      layers=layers_ran(alluredir, started_ms))
        picture = write(alluredir, snap, started_ms=started_ms)
        if run_dir is not None and Path(run_dir).is_dir():
            (Path(run_dir) / SVG_NAME).write_text(picture.read_text())
        return picture
    except Exception as exc:  # noqa: BLE001 - the picture never fails the run
        print(f"\nstackcheck: the lab picture could not be drawn: {type(exc).__name__}: {exc}")
        return None
