"""One Allure result per upstream spec, written into the alluredir beside pytest's own results.

Labels: epic ``kubernetes``, feature ``upstream conformance``, story = the spec's sig
(``sig-scheduling``), suite = the focus group, tags = the spec's ``[Bracketed]`` tags, an
``as_id`` derived from the spec name (stable across runs, so history and waivers work).
Texts go through stackcheck's redaction.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from pathlib import Path

from allure_commons.logger import AllureFileLogger
from allure_commons.model2 import (
    Attachment,
    Label,
    Parameter,
    StatusDetails,
    TestResult,
)
from allure_commons.types import AttachmentType

from stackcheck_reports.redact import redact

from .junit import SpecResult, log_excerpt

EPIC = "kubernetes"
FEATURE = "upstream conformance"
_SIG = re.compile(r"\[(sig-[a-z0-9-]+)\]")
_TAG = re.compile(r"\[([A-Za-z][^\]]*)\]")
#: Captured logs larger than this are cut to their end in the attachment.
MAX_LOG = 256 * 1024


def sig_of(name: str) -> str:
    """``sig-scheduling`` from ``[sig-scheduling] SchedulerPredicates ...`` (or ``unknown sig``)."""
    match = _SIG.search(name)
    return match[1] if match else "unknown sig"


def tags_of(name: str) -> list[str]:
    """The spec's bracketed tags (``Serial``, ``Conformance``, ``sig-scheduling`` ...)."""
    return list(dict.fromkeys(_TAG.findall(name)))


def spec_id(name: str) -> str:
    """A stable Allure id for an upstream spec name."""
    return "k8s-e2e-" + hashlib.sha1(name.encode()).hexdigest()[:12]


def to_allure(spec: SpecResult, *, group: str, version: str, start_ms: int,
              attachments: list[Attachment] | None = None) -> TestResult:
    """The Allure model of one spec's outcome (timings: start + the spec's run time)."""
    labels = [
        Label("epic", EPIC), Label("feature", FEATURE), Label("story", sig_of(spec.name)),
        Label("parentSuite", "kubernetes upstream e2e"), Label("suite", group),
        Label("as_id", spec_id(spec.name)), Label("framework", "ginkgo"),
        Label("language", "go"), Label("severity", "normal"),
        *(Label("tag", t) for t in tags_of(spec.name)),
    ]
    if spec.flaky:  # the same labels stackcheck gives a check that passed on a rerun
        labels += [Label("flaky", f"passed on attempt {spec.attempts}"), Label("tag", "flaky")]
    details = None
    if spec.status != "passed":
        trace = spec.trace
        if spec.output and spec.status in ("failed", "broken"):
            trace += "\n\nlog excerpt (end of the spec's log):\n" + log_excerpt(spec.output)
        details = StatusDetails(message=redact(spec.message) or None,
                                trace=redact(trace) or None)
    intro = f"Upstream Kubernetes e2e spec (e2e.test {version}, focus group {group})."
    flake = ([f"Flaky: failed on attempt 1, passed on attempt {spec.attempts}. "
              f"The failure: {spec.earlier_failure}"] if spec.flaky else [])
    description = "\n\n".join([intro, *flake, *spec.notes])
    return TestResult(
        uuid=str(uuid.uuid4()),
        historyId=hashlib.md5(f"k8s-e2e:{spec.name}".encode()).hexdigest(),
        testCaseId=hashlib.md5(spec.name.encode()).hexdigest(),
        fullName=f"k8s e2e: {spec.name}",
        name=spec.name,
        status=spec.status,
        statusDetails=details,
        description=redact(description),
        start=start_ms,
        stop=start_ms + int(spec.seconds * 1000),
        labels=labels,
        parameters=[Parameter("e2e.test", version)],
        attachments=attachments or [],
    )


def write(alluredir: Path, specs: Iterable[SpecResult], *, group: str, version: str) -> int:
    """Write one result (and its log attachment) per spec; return how many were written."""
    logger = AllureFileLogger(str(alluredir))
    count = 0
    for spec in specs:
        attachments = []
        logs = [("e2e spec log", spec.output)]
        if spec.flaky:
            logs.append(("e2e spec log (failed attempt 1)", spec.earlier_output))
        for name, text in logs:
            if not text:
                continue
            source = f"{uuid.uuid4()}-attachment.txt"
            logger.report_attached_data(redact(text[-MAX_LOG:]), source)
            attachments.append(Attachment(name=name, source=source,
                                          type=AttachmentType.TEXT.mime_type))
        result = to_allure(spec, group=group, version=version, start_ms=spec.start_ms,
                           attachments=attachments)
        logger.report_result(result)
        count += 1
    return count
