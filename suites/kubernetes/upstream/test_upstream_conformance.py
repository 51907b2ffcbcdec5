"""Kubernetes' own e2e conformance specs (what Sonobuoy runs), inside stackcheck's run.

Opt-in: ``--upstream-conformance=scheduling|node|conformance``. Each group is one check that
runs upstream ``e2e.test`` against the lab's cluster and adds one Allure result per upstream
spec (feature "upstream conformance", story = the spec's sig); the check fails when any spec
failed or could not run, and lists them. It is ``disruptive``: upstream's [Serial] specs
taint, label and fill nodes, so nothing else may run meanwhile.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import allure
import pytest
from kubernetes import client

from stackcheck.kubernetes import Kube
from stackcheck.lab import Lab
from stackcheck_builders.kubernetes.e2e import E2EBinaries
from stackcheck_reports.evidence import attach_table, attach_text, measure, step
from stackcheck_reports.session import RUN_DIR_KEY

from . import images, leftovers, results, runner
from .groups import GroupError, ginkgo_major, load_group, plan
from .junit import SpecResult, healthy_wait_seconds, log_excerpt

pytestmark = allure.feature("upstream conformance")


@allure.id("kubernetes-upstream-conformance")
@pytest.mark.disruptive
def test_upstream_e2e_specs_pass(upstream_group_name: str | None, lab: Lab,
                                 e2e_binaries: E2EBinaries | None,
                                 request: pytest.FixtureRequest) -> None:
    """Kubernetes' upstream e2e specs of one focus group pass against the lab"""
    if upstream_group_name is None or e2e_binaries is None:
        pytest.skip("upstream e2e conformance is opt-in: "
                    "--upstream-conformance=scheduling|node|conformance")
    kube: Kube = request.getfixturevalue("kube")
    e2e = e2e_binaries
    server = client.VersionApi(kube.api).get_code().git_version
    try:
        group = load_group(upstream_group_name, e2e.version)
    except GroupError as exc:
        pytest.skip(f"e2e.test {e2e.version}: {exc}")
    workdir = request.config.stash[RUN_DIR_KEY] / "upstream" / group.name
    cmd = runner.E2ECommand(e2e.e2e_test, lab.kubernetes.kubeconfig, e2e.kubectl,
                            group.flake_attempts, ginkgo=ginkgo_major(e2e.version))
    attach_text("e2e.test", f"e2e.test {e2e.version} ({e2e.e2e_test}, ginkgo v{cmd.ginkgo}); "
                f"cluster {server}; group {group.name}: {group.kind}; reports and logs in "
                f"{workdir}")

    with step(f"list the specs of group {group.name}, {group.kind} (e2e.test dry run)"):
        selected = runner.list_specs(cmd, group, workdir)
    on_nodes = images.node_images(kube.core)
    missing = images.missing(group.images.values(), on_nodes)
    todo = plan(group, selected, missing,
                run_unlisted=request.config.getoption("--upstream-unlisted", default=False))
    before, namespaces = leftovers.snapshot(kube.core), leftovers.e2e_namespaces(kube.core)
    started, stuck = time.monotonic(), []
    try:
        with step(f"e2e.test: {len(todo.parallel)} specs, then {len(todo.serial)} [Serial] "
                  f"specs ({len(todo.skipped)} skipped before running; timeout "
                  f"{group.timeout:.0f} s)"):
            invocations = runner.run_plan(cmd, todo, workdir, group.timeout)
        spent = time.monotonic() - started
    finally:
        stuck = _clean_up(kube, before, namespaces)
    specs = runner.merge(group, todo, invocations, on_nodes)
    waited = _note_waits(specs)

    alluredir = getattr(request.config.option, "allure_report_dir", None)
    if alluredir:
        results.write(Path(alluredir), specs, group=group.name, version=e2e.version)
    _attach_summary(specs, invocations, server, e2e.version, spent, waited)
    measure(f"upstream {group.name} run", spent)
    if waited:
        measure(f"upstream {group.name} kube-system pod wait", waited)

    bad = [s for s in specs if s.status in ("failed", "broken")]
    assert selected, (f"group {group.name} ({group.kind}): e2e.test {e2e.version} selected "
                      "no spec")
    assert not bad, (
        f"{len(bad)} of {len(specs)} upstream specs of group {group.name} ({group.kind}) "
        "did not pass "
        f"({dict(Counter(s.status for s in specs))}):\n" + _by_reason(bad)
    )
    assert not stuck, f"upstream's e2e namespaces still terminating after the run: {stuck}"


def _by_reason(bad: list[SpecResult]) -> str:
    """Failed specs, those sharing one reason (e.g. a failed suite setup) listed once."""
    reasons: dict[tuple[str, str], list[str]] = {}
    for spec in bad:
        reasons.setdefault((spec.status, _first(spec.message)), []).append(spec.name)
    lines = []
    for (status, reason), names in reasons.items():
        if len(names) == 1:
            lines.append(f"- {status}: {names[0]}: {reason}")
        else:
            lines.append(f"- {len(names)} specs {status}: {reason}")
            lines += [f"    {name}" for name in names]
    return "\n".join(lines)


def _clean_up(kube: Kube, before: dict[str, leftovers.NodeMarks],
              namespaces: set[str]) -> list[str]:
    """Leave the cluster as found before the next check runs: upstream's namespaces gone,
    its stray node taints/labels removed (both reported). Returns namespaces still there."""
    with step("wait for upstream's namespaces to be deleted"):
        stuck, waited = leftovers.settle_namespaces(kube.core, namespaces)
    removed = leftovers.remove_new(kube.core, before)
    lines = [f"waited {waited:.0f} s for upstream's namespaces to be deleted"]
    if stuck:
        lines.append(f"still terminating after {waited:.0f} s: {', '.join(stuck)}")
    if removed:
        lines.append("upstream specs left these on nodes; removed (upstream's own keys, "
                     "kubernetes.io/e2e-*):")
        lines += [f"  {item}" for item in removed]
    attach_text("upstream clean-up", "\n".join(lines))
    return stuck


def _note_waits(specs: list[SpecResult]) -> float:
    """Note in each spec the time it spent waiting for per-node kube-system pods."""
    total = 0.0
    for spec in specs:
        wait = healthy_wait_seconds(spec.output)
        if wait >= 1:
            spec.notes.append(f"kube-system pod wait: {wait:.0f} s of this spec's "
                              f"{spec.seconds:.0f} s (e2enode.WaitForTotalHealthy)")
            total += wait
    return total


def _first(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0][:600] if lines else "(no message)"


def _attach_summary(specs: list[SpecResult], invocations: list[runner.Invocation], server: str,
                    version: str, spent: float, waited: float) -> None:
    rows = [{"status": s.status, "seconds": f"{s.seconds:.1f}", "spec": s.name,
             "reason": _first(s.message) if s.status != "passed" else ""} for s in specs]
    attach_table("upstream specs", rows, header=["status", "seconds", "spec", "reason"])
    flaky = [s.name for s in specs if s.flaky]
    lines = [f"e2e.test {version} against {server}: {len(specs)} specs, "
             f"{dict(Counter(s.status for s in specs))}; flaky (passed on a later attempt): "
             f"{len(flaky)}", *(f"  flaky: {name}" for name in flaky),
             f"wall time {spent:.0f} s, of which {waited:.0f} s in e2enode.WaitForTotalHealthy: "
             "upstream specs (SchedulerPreemption, SchedulerPriorities) wait up to 1 minute each "
             "for per-node kube-system pods (kube-proxy, ...) a lab may not run as pods"]
    for inv in invocations:
        lines.append(f"{inv.label}: {len(inv.specs)} specs, exit status {inv.returncode}, "
                     f"{inv.seconds:.0f} s{', TIMED OUT' if inv.timed_out else ''}; "
                     f"log {inv.log}")
    attach_text("upstream timing", "\n".join(lines))
    for inv in invocations:
        if inv.log.exists():
            attach_text(f"e2e.test log ({inv.label}, end)",
                        log_excerpt(inv.log.read_text(errors="replace"), 300))
