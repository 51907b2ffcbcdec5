"""pytest plugin: labels, waivers, flaky marks and must-gather per check; Allure files,
the secret scan and the results store at session end (in the xdist controller only).

Options: ``--waivers FILE``, ``--history-dir DIR``, ``--no-history``, ``--no-must-gather``.
Reruns are opt-in with pytest-rerunfailures (``--reruns N``); a pass on rerun is
labelled ``flaky`` on the final result and in the store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import allure
import pytest
from allure_pytest.utils import allure_label

from stackcheck.lab import Host, Lab
from stackcheck_reports import (
    allure_env,
    failures,
    mustgather,
    overview,
    preflight_result,
    secretscan,
)
from stackcheck_reports.redact import register_secret
from stackcheck_reports.scrub import scrub
from stackcheck_reports.session import LAB_KEY, RUN_DIR_KEY, RUN_ID_KEY, VARIANTS_DIR, verdict_of
from stackcheck_reports.store import Store, read_results
from stackcheck_reports.waivers import Waiver, WaiverError, find, load_waivers

#: Exit status of a run whose results hold key material.
EXIT_SECRETS = 7


@dataclass
class _State:
    started_ms: float
    waivers: list[Waiver] = field(default_factory=list)
    secrets: list[secretscan.Finding] = field(default_factory=list)
    stored: Path | None = None
    run_id: str = ""


STATE_KEY = pytest.StashKey[_State]()


def pytest_configure(config: pytest.Config) -> None:
    state = _State(started_ms=time.time() * 1000)
    path = config.getoption("--waivers")
    if path is not None:
        try:
            state.waivers = load_waivers(path)
        except WaiverError as exc:
            raise pytest.UsageError(str(exc)) from None
    config.stash[STATE_KEY] = state


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Teach redaction the lab's key material, whatever a check attaches."""
    lab = session.config.stash.get(LAB_KEY, None)
    for path in secretscan.lab_secret_files(lab) if lab else []:
        try:
            register_secret(path.read_bytes())
        except OSError:
            continue


def _words(name: str) -> str:
    return name.removeprefix("test_").replace("_", " ").strip()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Default feature (the module), story (the docstring or name), severity; the nodeid."""
    for item in items:
        func = getattr(item, "function", None)
        defaults = {
            "feature": _words(item.path.stem),
            "story": ((func.__doc__ or "").strip().splitlines() or [_words(item.originalname)])[0]
            if func is not None else _words(item.name),
            "severity": "normal",
        }
        for label_type, value in defaults.items():
            if not allure_label(item, label_type):
                item.add_marker(pytest.mark.allure_label(value, label_type=label_type))
        item.add_marker(pytest.mark.allure_label(item.nodeid, label_type="nodeid"))


def _involved_hosts(item: pytest.Item) -> tuple[Lab | None, list[Host]]:
    funcargs = getattr(item, "funcargs", {})
    lab = funcargs.get("lab")
    if not isinstance(lab, Lab):
        return None, []
    host = funcargs.get("lab_host")
    return lab, [host] if isinstance(host, Host) else list(lab.hosts)


def _must_gather(item: pytest.Item) -> None:
    if item.config.getoption("--no-must-gather"):
        return
    if any(key == "blocked" for key, _ in item.user_properties):
        return  # it never ran; the preflight verdict says why
    lab, hosts = _involved_hosts(item)
    if lab is None:
        return
    verdict = verdict_of(item.config)
    try:
        bundles = mustgather.gather(lab, hosts, verdict.unreachable if verdict else None)
    except Exception as exc:  # noqa: BLE001 - must-gather never fails the run
        bundles = {"error": f"must-gather failed: {type(exc).__name__}: {exc}"}
    for name, text in bundles.items():
        allure.attach(text, name=f"must-gather {name}",
                      attachment_type=allure.attachment_type.TEXT)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Inside Allure's own wrapper, so what is changed here is what Allure records."""
    report = yield
    failures.shape(item, call, report)
    if report.when == "setup" and report.failed:  # e.g. the pods a check needs never ran
        _must_gather(item)
    if report.when != "call":
        return report
    if report.failed:
        ids = allure_label(item, "as_id")
        waiver = find(item.config.stash[STATE_KEY].waivers, ids[0] if ids else None, item.nodeid)
        if waiver is not None and not waiver.expired():
            report.outcome = "skipped"
            report.wasxfail = f"waived: {waiver.describe()}"
            allure.dynamic.label("waived", waiver.describe())
            allure.dynamic.tag("waived")
        else:
            _must_gather(item)
    elif report.passed and getattr(item, "execution_count", 1) > 1:
        allure.dynamic.label("flaky", f"passed on attempt {item.execution_count}")
        allure.dynamic.tag("flaky")
    return report


def _run_id(config: pytest.Config, state: _State) -> str:
    found = config.stash.get(RUN_ID_KEY, None)
    return found or time.strftime("%Y%m%d-%H%M%S", time.localtime(state.started_ms / 1000))


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput") or STATE_KEY not in config.stash:
        return
    state = config.stash[STATE_KEY]
    state.run_id = _run_id(config, state)
    alluredir = getattr(config.option, "allure_report_dir", None)
    if alluredir:
        _finish_results(config, state, Path(alluredir))
    if state.secrets:
        session.exitstatus = EXIT_SECRETS
    elif any(w.expired() for w in state.waivers) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _finish_results(config: pytest.Config, state: _State, alluredir: Path) -> None:
    lab = config.stash.get(LAB_KEY, None)
    alluredir.mkdir(parents=True, exist_ok=True)
    verdict = verdict_of(config)
    run_dir = config.stash.get(RUN_DIR_KEY, None)
    runtimes = allure_env.runtime_facts(run_dir / VARIANTS_DIR) if run_dir else {}
    allure_env.write_environment(alluredir, allure_env.environment(lab, state.run_id)
                                 | runtimes | preflight_result.environment(verdict))
    if verdict is not None:
        preflight_result.write(alluredir, verdict, state.run_id, state.started_ms)
    allure_env.write_categories(alluredir)
    allure_env.write_executor(alluredir)
    overview.for_session(config, alluredir, state.started_ms)
    scrub(alluredir, since_ms=state.started_ms)
    files = secretscan.lab_secret_files(lab) if lab is not None else []
    state.secrets = secretscan.scan(alluredir, secretscan.needles(files))
    if config.getoption("--no-history"):
        return
    record = read_results(alluredir, since_ms=state.started_ms, run_id=state.run_id)
    record.expired_waivers = [w.describe() for w in state.waivers if w.expired()]
    xml = getattr(config.option, "xmlpath", None)
    record.junitxml = str(Path(xml).resolve()) if xml else None
    root = config.getoption("--history-dir") or config.rootpath / ".stackcheck" / "history"
    state.stored = Store(root).save(record)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or hasattr(config, "workerinput"):
        return
    tr = terminalreporter
    if state.secrets:
        tr.section("stackcheck: SECRETS FOUND IN THE ALLURE RESULTS", sep="!", red=True, bold=True)
        for finding in state.secrets:
            tr.write_line(f"  {finding}", red=True, bold=True)
        tr.write_line(f"  do not publish these results; exit status {EXIT_SECRETS}", red=True)
    expired = [w for w in state.waivers if w.expired()]
    if expired:
        tr.section("stackcheck: expired waivers fail this run", sep="!", red=True, bold=True)
        for waiver in expired:
            tr.write_line(f"  EXPIRED {waiver.describe()}", red=True)
    if state.stored is not None:
        tr.write_line(f"stackcheck: run {state.run_id} kept in {state.stored}; "
                      "'stackcheck report --since-last' says what changed")
