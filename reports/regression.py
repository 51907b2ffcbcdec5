"""The nightly regression summary: what changed since the last run(s).

Compares a run with the ``N`` runs before it: newly failing, fixed, still failing (since
when), flaky (passed on rerun, or flipping across runs), markedly slower checks and
measurements, waived failures and expired waivers. Exit status 1 when something is newly
failing or a waiver expired.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import statistics
from dataclasses import asdict, dataclass, field

from stackcheck_reports.store import CheckOutcome, RunRecord


@dataclass
class Summary:
    run_id: str
    compared_with: list[str]
    totals: dict[str, int]
    newly_failing: list[dict] = field(default_factory=list)
    fixed: list[dict] = field(default_factory=list)
    still_failing: list[dict] = field(default_factory=list)
    flaky: list[dict] = field(default_factory=list)
    slower: list[dict] = field(default_factory=list)
    waived: list[dict] = field(default_factory=list)
    expired_waivers: list[str] = field(default_factory=list)
    junitxml: str | None = None
    #: the preflight's verdict of this run, layer -> "status — summary"
    preflight: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.newly_failing or self.expired_waivers else 0

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "exit_code": self.exit_code}, indent=2)


def _when(run: RunRecord) -> str:
    return dt.datetime.fromtimestamp(run.start).strftime("%Y-%m-%d %H:%M")


def _entry(test: CheckOutcome, **extra: object) -> dict:
    return {"key": test.key, "name": test.name, "nodeid": test.nodeid,
            "category": test.category, "message": test.message, **extra}


def _failing_since(key: str, current: RunRecord, history: list[RunRecord]) -> RunRecord:
    since = current
    for run in history:  # newest first
        test = run.tests.get(key)
        if test is None or not test.failed:
            break
        since = run
    return since


def _flips(statuses: list[str]) -> int:
    ran = [s for s in statuses if s in ("passed", "failed", "broken")]
    return sum(1 for a, b in itertools.pairwise(ran) if (a == "passed") != (b == "passed"))


def compare(current: RunRecord, previous: list[RunRecord], *,
            history: list[RunRecord] | None = None, slower_ratio: float = 1.5,
            min_slowdown: float = 0.5) -> Summary:
    """Compare ``current`` with ``previous`` (newest first); ``history`` dates streaks."""
    history = previous if history is None else history
    tests = current.tests.values()
    summary = Summary(
        run_id=current.run_id,
        compared_with=[r.run_id for r in previous],
        totals={s: sum(t.status == s for t in tests)
                for s in ("passed", "failed", "broken", "skipped", "waived")}
        | {"flaky": sum(t.flaky for t in tests), "total": len(current.tests)},
        expired_waivers=list(current.expired_waivers),
        junitxml=current.junitxml,
        preflight={k.removeprefix("preflight."): v for k, v in current.environment.items()
                   if k.startswith("preflight.")},
    )
    last = previous[0] if previous else None
    for key, test in sorted(current.tests.items()):
        before = next((r.tests[key] for r in previous if key in r.tests), None)
        if test.status == "waived":
            summary.waived.append(_entry(test, waiver=test.waiver))
        elif test.failed and (before is None or not before.failed):
            new_check = before is None and last is not None
            summary.newly_failing.append(_entry(test, new_check=new_check))
        elif test.failed:
            since = _failing_since(key, current, history)
            summary.still_failing.append(_entry(test, since=since.run_id, since_time=_when(since)))
        elif test.status == "passed" and before is not None and before.failed:
            failing_in = [r.run_id for r in previous if key in r.tests and r.tests[key].failed]
            summary.fixed.append(_entry(test, failing_in=failing_in[:3]))
        window = [test.status] + [r.tests[key].status for r in previous if key in r.tests]
        flips = _flips(list(reversed(window)))
        if test.flaky:
            summary.flaky.append(_entry(test, why=f"passed on rerun (attempt {test.attempts})"))
        elif flips >= 2:
            summary.flaky.append(_entry(test, why=f"flipped {flips} times in {len(window)} runs"))
        summary.slower += _slower(test, previous, slower_ratio, min_slowdown)
    return summary


def _slower(test: CheckOutcome, previous: list[RunRecord], ratio: float,
            min_slowdown: float) -> list[dict]:
    found = []
    before = [r.tests[test.key] for r in previous if test.key in r.tests]
    past = [b.duration for b in before if b.status == "passed"]
    if test.status == "passed" and past:
        base = statistics.median(past)
        if base > 0 and test.duration / base >= ratio and test.duration - base >= min_slowdown:
            found.append({"key": test.key, "what": "duration", "before": round(base, 3),
                          "now": round(test.duration, 3), "ratio": round(test.duration / base, 2)})
    for name, value in test.measurements.items():
        past = [b.measurements[name] for b in before if name in b.measurements]
        if past:
            base = statistics.median(past)
            if base > 0 and value / base >= ratio:
                found.append({"key": test.key, "what": name, "before": round(base, 3),
                              "now": round(value, 3), "ratio": round(value / base, 2)})
    return found


def _lines(title: str, entries: list[dict], fmt) -> list[str]:
    if not entries:
        return []
    return [f"### {title} ({len(entries)})", "", *(f"- {fmt(e)}" for e in entries), ""]


def _why(e: dict) -> str:
    bits = [b for b in (e.get("category"), e.get("message")) if b]
    return f" — {': '.join(bits)}" if bits else ""


def to_markdown(s: Summary) -> str:
    """The morning read: short, worst news first."""
    t = s.totals
    against = ", ".join(s.compared_with) if s.compared_with else "nothing (first run)"
    verdict = ("NEW FAILURES" if s.newly_failing else "EXPIRED WAIVERS" if s.expired_waivers
               else "no new failures")
    out = [
        f"## stackcheck run {s.run_id}: {verdict}",
        "",
        f"{t['total']} checks: {t['passed']} passed, {t['failed'] + t['broken']} failing, "
        f"{t['skipped']} skipped, {t['waived']} waived, {t['flaky']} flaky on rerun. "
        f"Compared with {against}.",
        "",
    ]
    bad = {k: v for k, v in s.preflight.items() if not v.startswith("ok")}
    out += _lines("Preflight found the lab broken", [{"k": k, "v": v} for k, v in bad.items()],
                  lambda e: f"{e['k']}: {e['v']}")
    out += _lines("Expired waivers (fail the run)", [{"w": w} for w in s.expired_waivers],
                  lambda e: e["w"])
    out += _lines("Newly failing", s.newly_failing,
                  lambda e: f"`{e['key']}`{' (new check)' if e.get('new_check') else ''}{_why(e)}")
    out += _lines("Fixed", s.fixed, lambda e: f"`{e['key']}`")
    out += _lines("Still failing", s.still_failing,
                  lambda e: f"`{e['key']}` since {e['since']} ({e['since_time']}){_why(e)}")
    out += _lines("Flaky", s.flaky, lambda e: f"`{e['key']}` — {e['why']}")
    out += _lines("Markedly slower", s.slower,
                  lambda e: f"`{e['key']}` {e['what']}: {e['before']:g}s → {e['now']:g}s "
                            f"(x{e['ratio']:g})")
    out += _lines("Waived", s.waived, lambda e: f"`{e['key']}` — {e.get('waiver')}")
    junit = f"`{s.junitxml}`" if s.junitxml else "pass `--junitxml=FILE` to pytest to get one"
    out += [f"JUnit XML for CI: {junit}. Allure results carry the full story.", ""]
    return "\n".join(out)
