"""The upstream e2e part: focus/skip arguments, run plans, and JUnit -> Allure conversion.

The JUnit files in tests/data/upstream/ are recordings of real e2e.test v1.20.2 runs against a
local lab (trimmed: the thousands of specs focus filtered out are cut to a few, long logs
shortened); see tests/data/upstream/README.md. No test here needs a lab or e2e.test.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stackcheck_builders.kubernetes import K8sBuildError
from stackcheck_builders.kubernetes.cache import Layout, stale, write_manifest
from stackcheck_builders.kubernetes.e2e import E2E_BINARIES, ensure_e2e
from stackcheck_builders.kubernetes.progress import Progress
from stackcheck_suites.kubernetes.upstream import groups, images, junit, results, runner
from stackcheck_suites.kubernetes.upstream.groups import (
    MATCH_PREFIX,
    FocusGroup,
    GroupError,
    load_group,
)
from stackcheck_suites.kubernetes.upstream.runner import E2ECommand, Invocation

DATA = Path(__file__).resolve().parent / "data" / "upstream"
VERSION = "v1.20.2"
PREEMPTION = ("[sig-scheduling] SchedulerPreemption [Serial] validates basic preemption works "
              "[Conformance]")
LIMITRANGE = ("[sig-scheduling] LimitRange should create a LimitRange with defaults and ensure "
              "pod has those defaults applied. [Conformance]")
MULTI_AZ = "[sig-scheduling] Multi-AZ Clusters should spread the pods of a service across zones"
HOSTPORT = ("[sig-scheduling] SchedulerPredicates [Serial] validates that there exists conflict "
            "between pods with same hostPort and protocol but one using 0.0.0.0 hostIP "
            "[Conformance]")
AGNHOST = "k8s.gcr.io/e2e-test-images/agnhost:2.21"
ALL_IMAGES = {"h1": {"k8s.gcr.io/pause:3.2", "busybox:1.29"},
              "h2": {"k8s.gcr.io/pause:3.2", "busybox:1.29"}}


def _selects(focus: str, name: str) -> bool:
    """What ginkgo does with --ginkgo.focus (Go RE2 and Python agree on these patterns)."""
    return re.search(focus, MATCH_PREFIX + name) is not None


# --- focus groups and ginkgo arguments ---------------------------------------------------


@pytest.mark.parametrize("name", groups.available(VERSION))
def test_every_curated_group_loads_and_lists_specs(name: str) -> None:
    group = load_group(name, VERSION)
    assert group.specs, f"{name}.yaml lists no spec"
    unselected = [s for s in group.specs if not group.selects(s)]
    assert not unselected, f"{name}.yaml lists specs its focus/skip do not select: {unselected}"
    assert group.timeout > 0


def test_scheduling_group_is_curated() -> None:
    assert "scheduling" in groups.available(VERSION)
    group = load_group("scheduling", VERSION)
    assert group.needs(PREEMPTION) == ("k8s.gcr.io/pause:3.2",)
    assert AGNHOST in group.needs(HOSTPORT)
    assert group.notes_for(PREEMPTION) and not group.notes_for(LIMITRANGE)


def test_unknown_group_or_version_names_what_exists(tmp_path: Path) -> None:
    with pytest.raises(GroupError, match=r"no upstream focus group 'nope' .*curated: scheduling"):
        load_group("nope", VERSION)
    (tmp_path / "v9").mkdir()
    (tmp_path / "v9" / "images.yaml").write_text("pause: k8s.gcr.io/pause:3.2\n")
    (tmp_path / "v9" / "g.yaml").write_text("focus: x\nspecs: {a: [agnhost]}\n")
    with pytest.raises(GroupError, match=r"images not in images\.yaml: agnhost"):
        load_group("g", "v9", base=tmp_path)
    (tmp_path / "v9" / "h.yaml").write_text("focus: '[unclosed'\n")
    with pytest.raises(GroupError, match=r"h\.yaml"):
        load_group("h", "v9", base=tmp_path)


NEWER = "v1.28.3"  # no curated list: the generic groups, ginkgo v2
V2_SPEC = ("[sig-node] Pods should run through the lifecycle of Pods and PodStatus "
           "[Conformance]")


def test_a_version_without_a_curated_list_gets_the_generic_group_and_says_so() -> None:
    group = load_group("conformance", NEWER)
    assert not group.curated and group.prefix == "" and not group.specs
    assert group.kind.startswith("generic conformance group (upstream tags, focus "
                                 r"\[Conformance\]): no curated list for v1.28.3; curated: ")
    assert VERSION in group.kind
    assert group.selects(V2_SPEC)
    assert not group.selects(V2_SPEC.replace("[Conformance]", "[Disruptive] [Conformance]"))
    assert not group.selects("[sig-node] Pods should be evicted [Feature:X]")
    assert load_group("conformance", VERSION).kind == (
        f"curated list for {VERSION} (conformance.yaml)")
    # a 1.2x version before ginkgo v2: the generic group matches with v1's prefix
    older = load_group("scheduling", "v1.22.17")
    assert not older.curated and older.prefix == MATCH_PREFIX and older.selects(LIMITRANGE)
    node = load_group("node", NEWER)
    assert node.selects(V2_SPEC) and not node.selects(
        "[sig-network] Services should serve a basic endpoint [Conformance]")
    with pytest.raises(GroupError, match=r"no upstream focus group .nope. \(groups: scheduling"):
        load_group("nope", NEWER)


def test_a_generic_group_runs_every_selected_spec() -> None:
    group = load_group("conformance", NEWER)
    plan = groups.plan(group, [V2_SPEC, PREEMPTION], {})
    assert plan.parallel == [V2_SPEC] and plan.serial == [PREEMPTION] and not plan.skipped


def test_ginkgo_dialect_by_version() -> None:
    assert [groups.ginkgo_major(v) for v in ("v1.20.2", "v1.24.17", "v1.25.0", "1.31")] == [
        1, 1, 2, 2]
    with pytest.raises(GroupError, match=r"not vMAJOR\.MINOR"):
        groups.ginkgo_major("latest")


def test_exact_focus_for_ginkgo_v2_has_no_suite_prefix() -> None:
    (arg,) = groups.invocation_args([V2_SPEC], prefix=groups.MATCH_PREFIX_V2)
    focus = arg.removeprefix("--ginkgo.focus=")
    assert re.search(focus, V2_SPEC) and not re.search(focus, "x " + V2_SPEC)


def test_e2e_command_line_for_ginkgo_v2() -> None:
    cmd = E2ECommand(Path("/x/e2e.test"), Path("/k"), None, flake_attempts=2, ginkgo=2)
    argv = cmd.argv(Path("/r"), "--ginkgo.focus=a")
    assert "--ginkgo.no-color" in argv and "--ginkgo.flake-attempts=2" in argv
    assert not [a for a in argv if "reportPassed" in a or "noColor" in a]
    assert "--ginkgo.dry-run" in cmd.argv(Path("/r"), dry_run=True)
    assert cmd.prefix == "" and E2ECommand(Path("/x"), Path("/k")).prefix == MATCH_PREFIX


def test_group_arguments_are_its_focus_and_joined_skips() -> None:
    group = load_group("scheduling", VERSION)
    assert groups.ginkgo_args(group) == [
        r"--ginkgo.focus=\[sig-scheduling\]",
        r"--ginkgo.skip=\[Feature:|\[Disruptive\]|\[Flaky\]",
    ]
    bare = FocusGroup("g", VERSION, focus="x")
    assert groups.ginkgo_args(bare) == ["--ginkgo.focus=x"]


def test_exact_focus_selects_exactly_the_named_specs() -> None:
    tricky = [PREEMPTION, LIMITRANGE,
              '[k8s.io] Probing container should be restarted with a exec "cat /tmp/health" '
              "liveness probe [NodeConformance] [Conformance]",
              "[sig-scheduling] SchedulerPriorities [Serial] Pod should be scheduled to node "
              "that don't match the PodAntiAffinity terms",
              "[sig-apps] Job should run a job to completion (a+b)*? {x} ^$ | c [Conformance]"]
    (arg,) = groups.invocation_args(tricky)
    focus = arg.removeprefix("--ginkgo.focus=")
    assert all(_selects(focus, name) for name in tricky)
    assert not _selects(focus, LIMITRANGE.replace("LimitRange should", "LimitRange could"))
    assert not _selects(focus, PREEMPTION + " and more")  # anchored at the end
    assert not _selects(focus, "[sig-x] " + LIMITRANGE)  # and at the start


def test_focus_matches_the_way_ginkgo_prefixes_spec_names() -> None:
    """Recorded: ginkgo matched `^Kubernetes e2e suite \\[Top Level\\] (...)$` to 2 specs and
    `^\\[sig-scheduling\\] LimitRange` to none; the prefix constant must keep saying so."""
    assert MATCH_PREFIX == "Kubernetes e2e suite [Top Level] "
    assert not _selects(r"^\[sig-scheduling\] LimitRange", LIMITRANGE)


def test_plan_runs_serial_specs_apart_and_skips_specs_missing_images() -> None:
    group = load_group("scheduling", VERSION)
    missing = images.missing(group.images.values(), ALL_IMAGES)
    assert AGNHOST in missing and "k8s.gcr.io/pause:3.2" not in missing
    plan = groups.plan(group, [PREEMPTION, LIMITRANGE, HOSTPORT, MULTI_AZ], missing)
    assert plan.parallel == [LIMITRANGE, MULTI_AZ]
    assert plan.serial == [PREEMPTION]
    assert list(plan.skipped) == [HOSTPORT]
    assert f"{AGNHOST} (missing on h1, h2)" in plan.skipped[HOSTPORT]


def test_plan_of_an_only_listed_group_skips_unlisted_specs() -> None:
    group = FocusGroup("g", VERSION, focus="x", only_listed=True,
                       specs={LIMITRANGE: ("pause",)}, images={"pause": "k8s.gcr.io/pause:3.2"})
    plan = groups.plan(group, [LIMITRANGE, PREEMPTION], {})
    assert plan.runnable == [LIMITRANGE]
    assert "not in the curated offline list" in plan.skipped[PREEMPTION]
    everything = groups.plan(group, [LIMITRANGE, PREEMPTION], {}, run_unlisted=True)
    assert everything.parallel == [LIMITRANGE] and everything.serial == [PREEMPTION]


def test_e2e_command_line() -> None:
    cmd = E2ECommand(Path("/x/e2e.test"), Path("/lab/admin.kubeconfig"), Path("/bin/kubectl"))
    argv = cmd.argv(Path("/r"), "--ginkgo.focus=a")
    assert argv[0] == "/x/e2e.test" and argv[-1] == "--ginkgo.focus=a"
    cmd = E2ECommand(Path("/x/e2e.test"), Path("/lab/admin.kubeconfig"), Path("/bin/kubectl"),
                     flake_attempts=2)
    argv = cmd.argv(Path("/r"), "--ginkgo.focus=a")
    for flag in ("--provider=skeleton", "--kubeconfig=/lab/admin.kubeconfig", "--report-dir=/r",
                 "--ginkgo.flakeAttempts=2",
                 "--ginkgo.reportPassed", "--spec-dump=/r/specs.json",
                 "--kubectl-path=/bin/kubectl",
                 f"--node-schedulable-timeout={runner.NODE_SCHEDULABLE_TIMEOUT}"):
        assert flag in argv
    dry = cmd.argv(Path("/r"), dry_run=True)
    assert "--ginkgo.dryRun" in dry and "--ginkgo.reportPassed" not in dry


# --- images --------------------------------------------------------------------------------


def test_image_names_are_compared_in_docker_short_form() -> None:
    assert images.normalize("docker.io/library/busybox:1.29") == "busybox:1.29"
    assert images.missing(["docker.io/library/busybox:1.29", "k8s.gcr.io/pause:3.2"],
                          ALL_IMAGES) == {}
    assert images.missing([AGNHOST], {"h1": {AGNHOST}, "h2": set()}) == {AGNHOST: ["h2"]}


def test_pull_failures_are_found_in_kubelet_event_texts() -> None:
    log = ('Warning Failed: Failed to pull image "k8s.gcr.io/e2e-test-images/agnhost:2.21": rpc '
           'error\nMessage:"Back-off pulling image \\"docker.io/library/nginx:1.14-alpine\\""\n'
           'Container image "busybox:1.29" is not present with pull policy of Never')
    assert images.pull_failures(log) == {AGNHOST, "docker.io/library/nginx:1.14-alpine",
                                         "busybox:1.29"}


# --- recorded JUnit -> results -> Allure -----------------------------------------------------


def _recorded(name: str) -> junit.JUnitRun:
    return junit.parse(DATA / name)


def test_recorded_passing_run_parses_into_ran_and_filtered_specs() -> None:
    run = _recorded("scheduling-serial-junit.xml")
    ran = [s for s in run.specs if s.status == "passed"]
    assert len(ran) >= 5 and not run.setup_failures
    assert all(s.output for s in ran), "--ginkgo.reportPassed keeps each spec's log"
    filtered = [s for s in run.specs if s.status == "skipped"]
    assert filtered and all(s.seconds == 0 for s in filtered)
    spec = run.by_name()[PREEMPTION]
    assert spec.seconds > 60
    assert junit.healthy_wait_seconds(spec.output) == pytest.approx(60, abs=1)


def test_recorded_failure_keeps_the_specs_own_message_and_log() -> None:
    run = _recorded("missing-image-junit.xml")
    failed = run.by_name()[HOSTPORT]
    assert failed.status == "failed" and failed.kind in ("Failure", "Timeout")
    assert failed.message and "predicates.go" not in failed.message.splitlines()[0]
    assert "predicates.go" in failed.trace  # the code locations stay in the trace
    assert AGNHOST in images.pull_failures(failed.output)


RESOURCE_LIMITS = ("[sig-scheduling] SchedulerPredicates [Serial] validates resource limits of "
                   "pods that are allowed to run  [Conformance]")


def test_recorded_flake_is_one_passed_result_remembering_the_failed_attempt(
        tmp_path: Path) -> None:
    """Recorded with --ginkgo.flakeAttempts=2: "validates resource limits" ran right after a
    spec whose pods were still terminating, failed, and passed on its second attempt."""
    run = _recorded("flaky-junit.xml")
    names = [s.name for s in run.specs]
    assert names.count(RESOURCE_LIMITS) == 1
    spec = run.by_name()[RESOURCE_LIMITS]
    assert spec.status == "passed" and spec.attempts == 2 and spec.flaky
    assert "timed out waiting for the condition" in spec.earlier_failure
    assert spec.earlier_output and spec.earlier_output != spec.output
    steady = [s for s in run.specs if s.status == "passed" and s.name != RESOURCE_LIMITS]
    assert steady and not any(s.flaky for s in steady)
    results.write(tmp_path, [spec], group="scheduling", version=VERSION)
    (written,) = [json.loads(p.read_text()) for p in tmp_path.glob("*-result.json")]
    labels = {(label["name"], label["value"]) for label in written["labels"]}
    assert {("flaky", "passed on attempt 2"), ("tag", "flaky")} <= labels
    assert written["status"] == "passed" and "Flaky: failed on attempt 1" in written["description"]
    assert [a["name"] for a in written["attachments"]] == [
        "e2e spec log", "e2e spec log (failed attempt 1)"]


def _one(inv_label: str, names: list[str], run: junit.JUnitRun | None, **kw) -> Invocation:
    return Invocation(inv_label, names, Path("/nowhere"), returncode=0, junit=run,
                      started_ms=1_000_000, **kw)


def test_merge_gives_every_selected_spec_one_result_in_run_order() -> None:
    group = load_group("scheduling", VERSION)
    run = _recorded("scheduling-serial-junit.xml")
    names = [s.name for s in run.specs if s.status == "passed"]
    plan = groups.Plan(serial=sorted(names), skipped={HOSTPORT: "needs agnhost"})
    merged = runner.merge(group, plan, [_one("serial", plan.serial, run)], ALL_IMAGES)
    assert [s.name for s in merged] == [*names, HOSTPORT]  # JUnit order = run order
    assert merged[-1].status == "skipped" and "needs agnhost" in merged[-1].message
    starts = [s.start_ms for s in merged[:-1]]
    assert starts[0] == 1_000_000 and starts == sorted(starts)
    assert any(s.notes for s in merged if "SchedulerPreemption" in s.name)


def test_merge_explains_runtime_skips_and_missing_results() -> None:
    group = load_group("scheduling", VERSION)
    run = _recorded("scheduling-parallel-junit.xml")
    reasons = junit.skip_reasons(DATA / "scheduling-parallel-specs.json", {MULTI_AZ})
    assert "Only supported for providers" in reasons[MULTI_AZ]
    ghost = "[sig-scheduling] a spec e2e.test never reported"
    inv = _one("parallel", [LIMITRANGE, MULTI_AZ, ghost], run, skip_reasons=reasons)
    by_name = {s.name: s for s in runner.merge(group, groups.Plan(), [inv], ALL_IMAGES)}
    assert by_name[LIMITRANGE].status == "passed"
    assert by_name[MULTI_AZ].status == "skipped"
    assert "Only supported for providers" in by_name[MULTI_AZ].message
    assert by_name[ghost].status == "broken"


def test_failure_from_a_missing_image_is_reported_skipped_not_failed() -> None:
    group = load_group("scheduling", VERSION)
    run = _recorded("missing-image-junit.xml")
    merged = runner.merge(group, groups.Plan(), [_one("serial", [HOSTPORT], run)], ALL_IMAGES)
    assert merged[0].status == "skipped"
    assert f"{AGNHOST} (missing on h1, h2)" in merged[0].message
    with_agnhost = {h: {*names, AGNHOST} for h, names in ALL_IMAGES.items()}
    run = _recorded("missing-image-junit.xml")
    merged = runner.merge(group, groups.Plan(), [_one("serial", [HOSTPORT], run)], with_agnhost)
    assert merged[0].status == "failed", "an image the nodes have cannot excuse a failure"


def test_suite_setup_failure_fails_every_spec_naming_the_tainted_node() -> None:
    """Recorded with a NoSchedule taint left on node h2: e2e.test's suite setup refuses to
    start (after --node-schedulable-timeout); its log names the node and the taint."""
    group = load_group("scheduling", VERSION)
    folder = DATA / "tainted-node"
    run = junit.parse(folder / "junit_01.xml")
    assert [s.name for s in run.setup_failures] == ["BeforeSuite"] and not run.specs
    inv = Invocation("parallel", [LIMITRANGE, MULTI_AZ], folder, returncode=1, junit=run)
    reason = inv.setup_failure()
    assert "Node h2" in reason and "stackcheck-demo left-behind NoSchedule" in reason
    assert reason.endswith("timed out waiting for the condition occurred")
    merged = runner.merge(group, groups.Plan(), [inv], ALL_IMAGES)
    assert {s.status for s in merged} == {"failed"}
    assert all(s.message == f"not run: e2e.test's suite setup failed: {reason}" for s in merged)


def test_after_a_failed_suite_setup_the_serial_specs_are_not_started(tmp_path: Path) -> None:
    folder = DATA / "tainted-node"
    failed = Invocation("parallel", [LIMITRANGE], folder,
                        junit=junit.parse(folder / "junit_01.xml"))
    started: list[str] = []

    class Cmd(E2ECommand):
        pass

    def fake_invoke(cmd, label, names, workdir, timeout):
        started.append(label)
        return failed

    plan = groups.Plan(parallel=[LIMITRANGE], serial=[PREEMPTION])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "invoke", fake_invoke)
        done = runner.run_plan(Cmd(Path("e2e.test"), Path("k")), plan, tmp_path, timeout=60)
    assert started == ["parallel"]
    assert done[1].specs == [PREEMPTION] and done[1].setup_failure() == failed.setup_failure()


def test_specs_of_an_invocation_that_never_started_are_broken_with_the_reason() -> None:
    group = load_group("scheduling", VERSION)
    inv = Invocation("serial", [PREEMPTION], Path("/x"), not_started="the group's timeout was "
                     "used up before it")
    (spec,) = runner.merge(group, groups.Plan(), [inv], ALL_IMAGES)
    assert spec.status == "broken" and "timeout was used up" in spec.message
    timed_out = Invocation("serial", [PREEMPTION], Path("/x"), timed_out=True, seconds=12)
    (spec,) = runner.merge(group, groups.Plan(), [timed_out], ALL_IMAGES)
    assert spec.status == "broken" and "stopped at the group's timeout" in spec.message


def test_allure_results_one_per_spec_with_labels_message_and_log(tmp_path: Path) -> None:
    group = load_group("scheduling", VERSION)
    run = _recorded("missing-image-junit.xml")
    with_agnhost = {h: {*names, AGNHOST} for h, names in ALL_IMAGES.items()}
    merged = runner.merge(group, groups.Plan(skipped={MULTI_AZ: "why not"}),
                          [_one("serial", [HOSTPORT], run)], with_agnhost)
    assert results.write(tmp_path, merged, group="scheduling", version=VERSION) == 2
    written = {r["name"]: r for r in map(json.loads,
                                          (p.read_text() for p in tmp_path.glob("*-result.json")))}
    failed, skipped = written[HOSTPORT], written[MULTI_AZ]
    labels = {(label["name"], label["value"]) for label in failed["labels"]}
    assert {("epic", "kubernetes"), ("feature", "upstream conformance"),
            ("story", "sig-scheduling"), ("suite", "scheduling"), ("tag", "Serial"),
            ("tag", "Conformance"), ("as_id", results.spec_id(HOSTPORT))} <= labels
    assert failed["status"] == "failed"
    assert failed["statusDetails"]["message"] == merged[0].message
    assert "log excerpt" in failed["statusDetails"]["trace"]
    (attachment,) = failed["attachments"]
    log = (tmp_path / attachment["source"]).read_text()
    assert AGNHOST in log
    assert failed["historyId"] != skipped["historyId"]
    assert skipped["status"] == "skipped"
    assert skipped["statusDetails"]["message"] == "not run: why not"
    assert failed["stop"] - failed["start"] == int(merged[0].seconds * 1000)


def test_spec_ids_and_sigs() -> None:
    assert results.spec_id(LIMITRANGE) == results.spec_id(LIMITRANGE)
    assert results.spec_id(LIMITRANGE) != results.spec_id(PREEMPTION)
    assert results.sig_of("[k8s.io] [sig-node] Pods x") == "sig-node"
    assert results.sig_of("[k8s.io] Pods x") == "unknown sig"
    assert results.tags_of(PREEMPTION) == ["sig-scheduling", "Serial", "Conformance"]


# --- running e2e.test: timeout, partial results ----------------------------------------------

SLOW = """
import signal, sys, time
def stop(*_):
    open(sys.argv[1], "w").write("<testsuite><testcase name='a' time='1'/></testsuite>")
    sys.exit(1)
signal.signal(signal.SIGINT, stop)
time.sleep(60)
"""


def test_timeout_interrupts_e2e_test_so_it_writes_what_it_has(tmp_path: Path) -> None:
    junit_file = tmp_path / "junit_01.xml"
    started = time.monotonic()
    rc, seconds, timed_out = runner.run([sys.executable, "-c", SLOW, str(junit_file)],
                                        tmp_path / "e2e.log", timeout=3)
    assert timed_out and rc == 1 and seconds < 10 and time.monotonic() - started < 10
    assert junit.parse(junit_file).specs[0].name == "a"
    assert (tmp_path / "e2e.log").read_text().startswith("$ ")


def test_a_process_deaf_to_sigint_is_killed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(runner, "KILL_GRACE", 0.5)
    deaf = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"
    rc, seconds, timed_out = runner.run([sys.executable, "-c", deaf], tmp_path / "log",
                                        timeout=3)
    assert timed_out and rc == -signal.SIGKILL and seconds < 10


# --- the e2e.test binary ----------------------------------------------------------------------


def _fake_e2e(path: Path, version: str) -> Path:
    path.write_text(f"#!/bin/sh\n[ \"$1\" = --version ] && echo {version}\n")
    path.chmod(0o755)
    return path


def test_given_e2e_test_is_used_and_its_version_read(tmp_path: Path) -> None:
    found = ensure_e2e(e2e_bin=_fake_e2e(tmp_path / "e2e.test", "v1.21.1"),
                       progress=Progress.quiet())
    assert found.e2e_test == tmp_path / "e2e.test" and found.version == "v1.21.1"
    assert found.ginkgo is None
    with pytest.raises(K8sBuildError, match="no such file"):
        ensure_e2e(e2e_bin=tmp_path / "absent", progress=Progress.quiet())
    (tmp_path / "junk").write_text("#!/bin/sh\nexit 3\n")
    (tmp_path / "junk").chmod(0o755)
    with pytest.raises(K8sBuildError, match="does not answer --version"):
        ensure_e2e(e2e_bin=tmp_path / "junk", progress=Progress.quiet())


def test_cached_e2e_binaries_are_checked_like_the_lab_binaries(tmp_path: Path,
                                                              monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = Layout.for_version(VERSION).root / "e2e"
    folder.mkdir(parents=True)
    for name in E2E_BINARIES:
        _fake_e2e(folder / name, VERSION)
    assert stale(folder, VERSION, E2E_BINARIES) == dict.fromkeys(E2E_BINARIES, "no manifest")
    write_manifest(folder, {"version": VERSION}, {name: {} for name in E2E_BINARIES})
    assert stale(folder, VERSION, E2E_BINARIES) == {}
    found = ensure_e2e(progress=Progress.quiet())  # a cache hit: nothing is built
    assert found.e2e_test == folder / "e2e.test" and found.ginkgo == folder / "ginkgo"
    (folder / "ginkgo").write_text("changed")
    assert stale(folder, VERSION, E2E_BINARIES) == {"ginkgo": "checksum mismatch"}


# --- the option, as an operator types it -------------------------------------------------


def test_option_works_from_the_project_root_without_paths() -> None:
    """``pytest --upstream-conformance=scheduling`` at the root (no test path given)."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--upstream-conformance=scheduling"], cwd=root, capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "test_upstream_e2e_specs_pass[scheduling]" in done.stdout
