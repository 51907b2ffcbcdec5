"""Read ginkgo v1's JUnit XML (``junit_01.xml`` from ``e2e.test --report-dir``).

Every spec of the suite appears: those focus/skip filtered out as ``<skipped/>`` with time 0,
so callers keep only the specs they selected. A failure's text is
``<component location>\\n<message>\\n<failure location>``; ``<system-out>`` (failures) and
``<passed>`` (with ``--ginkgo.reportPassed``) carry the spec's captured log.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

SETUP_NAMES = ("BeforeSuite", "AfterSuite", "SynchronizedBeforeSuite", "SynchronizedAfterSuite")
#: framework.Logf's timestamp: "Nov 26 00:16:35.868: INFO: ..."
_LOG_TIME = re.compile(r"^([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\.\d{3}): ", re.M)
_WAIT_HEALTHY = re.compile(r"Waiting up to \S+ for all nodes to be ready")


@dataclass
class SpecResult:
    """One spec's outcome. ``status``: passed, failed, skipped or broken (did not run)."""

    name: str
    status: str
    seconds: float = 0.0
    message: str = ""
    trace: str = ""
    output: str = ""
    kind: str = ""  # Failure, Timeout, Panic (ginkgo's failure type)
    notes: list[str] = field(default_factory=list)
    start_ms: int = 0  # derived: JUnit has durations only
    attempts: int = 1  # --ginkgo.flakeAttempts: ginkgo reports every attempt
    earlier_failure: str = ""  # the first failed attempt's message, when a later one passed
    earlier_output: str = ""  # and its log

    @property
    def flaky(self) -> bool:
        return self.status == "passed" and bool(self.earlier_failure)


@dataclass
class JUnitRun:
    """The specs of one JUnit file, in the order they ran, and suite setup failures."""

    specs: list[SpecResult]
    setup_failures: list[SpecResult]

    def by_name(self) -> dict[str, SpecResult]:
        return {s.name: s for s in self.specs}


def split_failure(text: str) -> tuple[str, str]:
    """``(message, trace)`` from ginkgo's failure text (locations around the message)."""
    lines = text.strip("\n").splitlines()
    if len(lines) >= 3:
        return "\n".join(lines[1:-1]).strip(), text.strip()
    return text.strip(), text.strip()


def parse(path: Path) -> JUnitRun:
    """All test cases of a ginkgo JUnit file (raises OSError / ET.ParseError)."""
    root = ET.parse(path).getroot()
    specs, setup = [], []
    for case in root.iter("testcase"):
        name = case.get("name", "")
        seconds = float(case.get("time") or 0)
        failure, skipped = case.find("failure"), case.find("skipped")
        passed = case.find("passed")
        output = (case.findtext("system-out") or "") or (passed.text if passed is not None else "")
        if failure is not None:
            message, trace = split_failure(failure.text or "")
            result = SpecResult(name, "failed", seconds, message, trace, output or "",
                                failure.get("type", "Failure"))
        elif skipped is not None:
            result = SpecResult(name, "skipped", seconds, output=output or "")
        else:
            result = SpecResult(name, "passed", seconds, output=output or "")
        (setup if name in SETUP_NAMES else specs).append(result)
    return JUnitRun(_final_attempts(specs), setup)


def _final_attempts(specs: list[SpecResult]) -> list[SpecResult]:
    """One result per spec: its last attempt, remembering an earlier failure (a flake)."""
    final: dict[str, SpecResult] = {}
    for spec in specs:
        previous = final.get(spec.name)
        if previous is not None:
            spec.attempts = previous.attempts + 1
            if previous.earlier_failure:
                spec.earlier_failure = previous.earlier_failure
                spec.earlier_output = previous.earlier_output
            elif previous.status == "failed":
                spec.earlier_failure = previous.message or previous.trace
                spec.earlier_output = previous.output
        final[spec.name] = spec
    return list(final.values())


def log_excerpt(output: str, lines: int = 40) -> str:
    """The last ``lines`` non-empty lines of a spec's captured log."""
    kept = [line for line in output.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def _stamp(text: str) -> datetime:
    return datetime.strptime(text, "%b %d %H:%M:%S.%f")


def healthy_wait_seconds(output: str) -> float:
    """Seconds a spec spent in e2enode.WaitForTotalHealthy ("Waiting up to 1m0s for all nodes
    to be ready" until the next log line), which waits for per-node kube-system pods."""
    total = 0.0
    stamps = [(m.start(), _stamp(m[1])) for m in _LOG_TIME.finditer(output)]
    for wait in _WAIT_HEALTHY.finditer(output):
        before = [t for pos, t in stamps if pos < wait.start()]
        after = [t for pos, t in stamps if pos > wait.start()]
        if before and after:
            total += max(0.0, (after[0] - before[-1]).total_seconds())
    return total


#: ginkgo v1 types.SpecState: a spec that was skipped (filtered out, or Skip() at run time).
_STATE_SKIPPED = 2


def skip_reasons(spec_dump: Path, names: set[str]) -> dict[str, str]:
    """Why specs in ``names`` skipped themselves, from ``e2e.test --spec-dump`` (one JSON
    SpecSummary per spec, concatenated); JUnit has no skip message."""
    try:
        text = spec_dump.read_text(errors="replace")
    except OSError:
        return {}
    decoder, pos, found = json.JSONDecoder(), 0, {}
    while pos < len(text):
        try:
            summary, pos = decoder.raw_decode(text, pos)
        except ValueError:
            break
        name = " ".join(summary.get("ComponentTexts", [])[1:])
        if name in names and summary.get("State") == _STATE_SKIPPED:
            message = (summary.get("Failure") or {}).get("Message", "")
            if message:
                found[name] = message.strip()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return found


def strip_stamp(line: str) -> str:
    """A log line without framework.Logf's leading timestamp."""
    return _LOG_TIME.sub("", line, count=1).strip()


def setup_context(log: str, lines: int = 4) -> list[str]:
    """What e2e.test logged just before its suite setup failed (the first ``FAIL:`` line),
    timestamps cut and repeated lines dropped, e.g. the nodes it found unschedulable."""
    kept: list[str] = []
    for line in log.splitlines():
        if ": FAIL: " in line:
            break
        text = strip_stamp(line).removeprefix("INFO: ").strip()
        if text and not text.startswith("STEP:"):
            if text in kept:
                kept.remove(text)
            kept.append(text)
    else:
        return []
    return kept[-lines:]
