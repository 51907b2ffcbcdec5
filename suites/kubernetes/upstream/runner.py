"""Run ``e2e.test`` for one focus group: list its specs, run them, merge what came back.

A group runs in up to two invocations of e2e.test, one after the other: the specs without
``[Serial]``, then the ``[Serial]`` ones. Both share the group's timeout; at the deadline
e2e.test gets SIGINT (ginkgo then writes its JUnit file for what ran) and SIGKILL a minute
later. Every selected spec gets exactly one result: its JUnit outcome, or skipped/broken
with the reason it did not run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import groups, junit
from .groups import FocusGroup, Plan
from .images import missing as missing_images
from .images import pull_failures
from .junit import JUnitRun, SpecResult

#: How long e2e.test's suite setup waits for every node to be schedulable (upstream: 30m).
#: A node left tainted or cordoned then fails the setup quickly, naming the node.
NODE_SCHEDULABLE_TIMEOUT = "2m"
SYSTEM_PODS_TIMEOUT = "2m"
KILL_GRACE = 60.0


@dataclass(frozen=True)
class E2ECommand:
    """How to start e2e.test against one cluster."""

    binary: Path
    kubeconfig: Path
    kubectl: Path | None = None
    flake_attempts: int = 1
    ginkgo: int = 1  # e2e.test of Kubernetes >= 1.25 is built with ginkgo v2

    @property
    def prefix(self) -> str:
        """What ginkgo puts before a spec name when it matches a focus."""
        return groups.MATCH_PREFIX if self.ginkgo == 1 else groups.MATCH_PREFIX_V2

    def argv(self, report_dir: Path, *selection: str, dry_run: bool = False) -> list[str]:
        v2 = self.ginkgo >= 2
        args = [
            str(self.binary), "--provider=skeleton", f"--kubeconfig={self.kubeconfig}",
            f"--report-dir={report_dir}", f"--e2e-output-dir={report_dir}",
            "--ginkgo.no-color" if v2 else "--ginkgo.noColor", "--disable-log-dump",
            f"--node-schedulable-timeout={NODE_SCHEDULABLE_TIMEOUT}",
            f"--system-pods-startup-timeout={SYSTEM_PODS_TIMEOUT}",
        ]
        if self.kubectl is not None:
            args.append(f"--kubectl-path={self.kubectl}")
        if dry_run:
            args.append("--ginkgo.dry-run" if v2 else "--ginkgo.dryRun")
        elif v2:  # ginkgo v2 has no reportPassed: its JUnit report keeps every spec's output
            args += ["--ginkgo.v", f"--ginkgo.flake-attempts={self.flake_attempts}",
                     f"--spec-dump={report_dir / 'specs.json'}"]
        else:  # a streamed log, each spec's log in the JUnit file, skip reasons
            args += ["--ginkgo.v", "--ginkgo.reportPassed",
                     f"--ginkgo.flakeAttempts={self.flake_attempts}",
                     f"--spec-dump={report_dir / 'specs.json'}"]
        return [*args, *selection]


@dataclass
class Invocation:
    """One run of e2e.test."""

    label: str
    specs: list[str]
    report_dir: Path
    returncode: int | None = None
    seconds: float = 0.0
    timed_out: bool = False
    junit: JUnitRun | None = None
    skip_reasons: dict[str, str] = field(default_factory=dict)
    not_started: str = ""
    started_ms: int = 0

    @property
    def log(self) -> Path:
        return self.report_dir / "e2e.log"

    def setup_failure(self) -> str | None:
        """Why e2e.test's suite setup (BeforeSuite) failed, or None: what e2e.test logged
        just before (e.g. the nodes it found unschedulable) and its error."""
        for failure in self.junit.setup_failures if self.junit else []:
            if "Before" in failure.name:
                try:
                    context = junit.setup_context(self.log.read_text(errors="replace"))
                except OSError:
                    context = []
                error = " ".join(line.strip() for line in failure.message.splitlines())
                return "; ".join([*context, junit.strip_stamp(error)])
        return None

    def problem(self) -> str | None:
        """Why specs of this invocation may have no result, or None."""
        if self.not_started:
            return f"e2e.test was not started: {self.not_started}"
        if self.timed_out:
            return f"e2e.test was stopped at the group's timeout after {self.seconds:.0f} s"
        if self.junit is None:
            return (f"e2e.test exited with status {self.returncode} and wrote no JUnit file; "
                    f"see {self.log}")
        return None


def run(argv: Sequence[str], log: Path, timeout: float) -> tuple[int | None, float, bool]:
    """Run ``argv`` with output in ``log``; return (exit status, seconds, timed out)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log, "w") as out:
        out.write("$ " + " ".join(argv) + "\n")
        out.flush()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=log.parent,
                                start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=max(timeout, 1.0))
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop(proc)
        except BaseException:
            _stop(proc, grace=5.0)
            raise
    return proc.returncode, time.monotonic() - started, timed_out


def _stop(proc: subprocess.Popen, grace: float | None = None) -> None:
    """SIGINT (ginkgo writes its reports), then SIGKILL after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=KILL_GRACE if grace is None else grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def list_specs(cmd: E2ECommand, group: FocusGroup, workdir: Path) -> list[str]:
    """The specs the group's focus/skip select, by an e2e.test dry run (about a second)."""
    report = workdir / "dry-run"
    rc, _, _ = run(cmd.argv(report, *groups.ginkgo_args(group), dry_run=True),
                   report / "e2e.log", timeout=120)
    path = report / "junit_01.xml"
    if rc != 0 or not path.exists():
        raise RuntimeError(f"e2e.test dry run failed (exit status {rc}); see {report / 'e2e.log'}")
    return [s.name for s in junit.parse(path).specs if s.status == "passed"]


def invoke(cmd: E2ECommand, label: str, names: list[str], workdir: Path,
           timeout: float) -> Invocation:
    """Run exactly ``names`` in one e2e.test and read its JUnit file and skip reasons."""
    inv = Invocation(label, names, workdir / label, started_ms=int(time.time() * 1000))
    inv.report_dir.mkdir(parents=True, exist_ok=True)
    argv = cmd.argv(inv.report_dir, *groups.invocation_args(names, cmd.prefix))
    inv.returncode, inv.seconds, inv.timed_out = run(argv, inv.log, timeout)
    path = inv.report_dir / "junit_01.xml"
    try:
        inv.junit = junit.parse(path)
    except (OSError, junit.ET.ParseError):
        inv.junit = None
    dump = inv.report_dir / "specs.json"
    inv.skip_reasons = junit.skip_reasons(dump, set(names))
    dump.unlink(missing_ok=True)  # ~20 MB: every spec of the suite
    return inv


def run_plan(cmd: E2ECommand, plan: Plan, workdir: Path, timeout: float) -> list[Invocation]:
    """The non-serial specs, then the serial ones, within ``timeout`` seconds in total.

    When the first invocation's suite setup fails (e.g. a node is tainted), the second is
    not started: it would fail the same way.
    """
    deadline = time.monotonic() + timeout
    done: list[Invocation] = []
    for label, names in (("parallel", plan.parallel), ("serial", plan.serial)):
        if not names:
            continue
        left = deadline - time.monotonic()
        previous = done[-1] if done else None
        if previous is not None and previous.setup_failure():
            # the same setup would fail again: report it for these specs too
            done.append(Invocation(label, names, previous.report_dir, junit=previous.junit))
        elif left <= 0 or (previous is not None and previous.timed_out):
            done.append(Invocation(label, names, workdir / label,
                                   not_started="the group's timeout was used up before it"))
        else:
            done.append(invoke(cmd, label, names, workdir, left))
    return done


def merge(group: FocusGroup, plan: Plan, invocations: list[Invocation],
          node_images: dict[str, set[str]]) -> list[SpecResult]:
    """One result per selected spec, in the order they ran, then the skipped ones.

    ``node_images``: node -> image names it has, to tell a failure caused by a missing image.
    Start times: each invocation's start plus the run times of the specs before.
    """
    results: list[SpecResult] = []
    for inv in invocations:
        found = inv.junit.by_name() if inv.junit else {}
        setup = inv.setup_failure()
        at = inv.started_ms
        wanted = set(inv.specs)
        ran = [s.name for s in inv.junit.specs if s.name in wanted] if inv.junit else []
        for name in ran + [n for n in inv.specs if n not in found]:
            spec = found.get(name)
            if spec is None or (setup and spec.status == "skipped" and spec.seconds == 0):
                spec = _not_run(name, inv, setup)
            elif spec.status == "skipped":
                spec.message = inv.skip_reasons.get(name, "skipped by the spec itself at run "
                                                    "time (no reason recorded)")
            elif spec.status == "failed":
                _explain_missing_image(spec, node_images)
            spec.start_ms, at = at, at + int(spec.seconds * 1000)
            results.append(spec)
    first = min((i.started_ms for i in invocations if i.started_ms), default=0)
    for name, reason in sorted(plan.skipped.items()):
        results.append(SpecResult(name, "skipped", message=f"not run: {reason}", start_ms=first))
    for spec in results:
        spec.notes.extend(group.notes_for(spec.name))
    return results


def _not_run(name: str, inv: Invocation, setup: str | None) -> SpecResult:
    if setup:
        return SpecResult(name, "failed", message="not run: e2e.test's suite setup failed: "
                          + setup, trace=setup)
    reason = inv.problem() or "e2e.test reported no result for it"
    return SpecResult(name, "broken", message=f"not run: {reason}")


def _explain_missing_image(spec: SpecResult, node_images: dict[str, set[str]]) -> None:
    """A failure caused by an image the nodes lack tested nothing: skipped, with the reason."""
    absent = missing_images(pull_failures(spec.output + "\n" + spec.trace), node_images)
    if absent:
        spec.status = "skipped"
        where = "; ".join(f"{ref} (missing on {', '.join(nodes)})" for ref, nodes in absent.items())
        spec.message = (f"could not run: needs image(s) not on every node: {where}; "
                        f"upstream failure: {spec.message}")
