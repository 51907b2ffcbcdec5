"""The results store: one folder per run under ``.stackcheck/history/<run_id>/``.

``run.json`` holds the run (id, start/end, lab environment, per-test outcome, duration,
attempts, flaky flag, measurements); ``index.sqlite`` beside the run folders indexes
outcomes across runs. A run is read from Allure result files.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stackcheck_reports.allure_env import read_environment
from stackcheck_reports.categories import classify
from stackcheck_reports.overview import is_overview
from stackcheck_reports.redact import redact

FAILED = ("failed", "broken")
DEFAULT_HISTORY = Path(".stackcheck/history")


@dataclass
class CheckOutcome:
    key: str
    name: str
    status: str  # passed, failed, broken, skipped, waived
    duration: float
    nodeid: str | None = None
    allure_id: str | None = None
    attempts: int = 1
    flaky: bool = False
    message: str = ""
    category: str | None = None
    waiver: str | None = None
    measurements: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status in FAILED


@dataclass
class RunRecord:
    run_id: str
    start: float
    end: float
    environment: dict[str, str] = field(default_factory=dict)
    tests: dict[str, CheckOutcome] = field(default_factory=dict)
    expired_waivers: list[str] = field(default_factory=list)
    junitxml: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        data = json.loads(text)
        data["tests"] = {k: CheckOutcome(**v) for k, v in data["tests"].items()}
        return cls(**data)


def _labels(result: dict, name: str) -> list[str]:
    return [str(x["value"]) for x in result.get("labels", []) if x.get("name") == name]


def _key(result: dict) -> str:
    ids = _labels(result, "as_id")
    base = ids[0] if ids else result.get("fullName") or result.get("name", "?")
    params = [f"{p['name']}={p['value']}" for p in result.get("parameters", [])
              if not p.get("excluded")]
    return f"{base}[{','.join(params)}]" if params else base


def _measurements(result: dict) -> dict[str, float]:
    found = {}
    for item in _labels(result, "measurement"):
        name, _, value = item.rpartition("=")
        try:
            found[name] = float(value)
        except ValueError:
            continue
    return found


def _outcome(attempts: list[dict]) -> CheckOutcome:
    attempts = sorted(attempts, key=lambda r: r.get("stop", 0))
    final = attempts[-1]
    status = final.get("status", "unknown")
    waived = _labels(final, "waived")
    if waived:
        status = "waived"
    message = (final.get("statusDetails") or {}).get("message") or ""
    flaky = bool(_labels(final, "flaky")) or (
        status == "passed" and any(a.get("status") in FAILED for a in attempts[:-1])
    )
    ids = _labels(final, "as_id")
    nodeids = _labels(final, "nodeid")
    return CheckOutcome(
        key=_key(final),
        name=final.get("name", "?"),
        status=status,
        duration=max(0, final.get("stop", 0) - final.get("start", 0)) / 1000,
        nodeid=nodeids[0] if nodeids else None,
        allure_id=ids[0] if ids else None,
        attempts=len(attempts),
        flaky=flaky,
        message=redact(message.strip().splitlines()[0])[:300] if message.strip() else "",
        category=classify(status, message),
        waiver=waived[0] if waived else None,
        measurements=_measurements(final),
    )


def read_results(alluredir: Path, *, since_ms: float | None = None,
                 run_id: str | None = None) -> RunRecord:
    """A RunRecord from Allure result files (only those started at/after ``since_ms``)."""
    alluredir = Path(alluredir)
    by_history: dict[str, list[dict]] = {}
    for path in alluredir.glob("*-result.json"):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if since_ms is not None and result.get("start", 0) < since_ms:
            continue
        if is_overview(result):  # the lab picture, not a check
            continue
        key = result.get("historyId") or _key(result)
        by_history.setdefault(key, []).append(result)
    tests = {}
    for attempts in by_history.values():
        outcome = _outcome(attempts)
        tests[outcome.key] = outcome
    env = read_environment(alluredir)
    starts = [a.get("start", 0) for rs in by_history.values() for a in rs]
    stops = [a.get("stop", 0) for rs in by_history.values() for a in rs]
    start = min(starts) / 1000 if starts else time.time()
    end = max(stops) / 1000 if stops else start
    fallback = time.strftime("results-%Y%m%d-%H%M%S", time.localtime(start))
    rid = run_id or env.get("run.id") or fallback
    return RunRecord(run_id=rid, start=start, end=end, environment=env, tests=tests)


class Store:
    """Runs kept under ``root``, newest last."""

    def __init__(self, root: Path = DEFAULT_HISTORY) -> None:
        self.root = Path(root)

    def _db(self) -> sqlite3.Connection:
        self.root.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.root / "index.sqlite")
        db.executescript(
            "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, start REAL, end REAL,"
            " tests INTEGER, failed INTEGER, flaky INTEGER);"
            "CREATE TABLE IF NOT EXISTS outcomes (run_id TEXT, key TEXT, status TEXT,"
            " duration REAL, flaky INTEGER, PRIMARY KEY (run_id, key));"
        )
        return db

    def save(self, record: RunRecord) -> Path:
        folder = self.root / record.run_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "run.json").write_text(record.to_json() + "\n")
        with self._db() as db:
            tests = record.tests.values()
            db.execute("DELETE FROM outcomes WHERE run_id = ?", (record.run_id,))
            db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                (record.run_id, record.start, record.end, len(record.tests),
                 sum(t.failed for t in tests), sum(t.flaky for t in tests)),
            )
            db.executemany(
                "INSERT INTO outcomes VALUES (?, ?, ?, ?, ?)",
                [(record.run_id, t.key, t.status, t.duration, int(t.flaky)) for t in tests],
            )
        db.close()
        return folder

    def has(self, run_id: str) -> bool:
        return (self.root / run_id / "run.json").exists()

    def load(self, run_id: str) -> RunRecord:
        return RunRecord.from_json((self.root / run_id / "run.json").read_text())

    def run_ids(self) -> list[str]:
        """Every stored run, oldest first."""
        if not (self.root / "index.sqlite").exists():
            return []
        db = self._db()
        try:
            rows = db.execute("SELECT run_id FROM runs ORDER BY start, run_id").fetchall()
        finally:
            db.close()
        return [r[0] for r in rows if self.has(r[0])]

    def before(self, run_id: str) -> list[RunRecord]:
        """The runs stored before ``run_id``, newest first."""
        ids = self.run_ids()
        ids = ids[: ids.index(run_id)] if run_id in ids else ids
        return [self.load(i) for i in reversed(ids)]
