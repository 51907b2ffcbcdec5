"""reports/: labels and evidence in Allure results, redaction, secret scan, waivers,
the results store and the regression summary, the HTML render's preconditions."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackcheck.layers import health_lines
from stackcheck_reports import mustgather, render
from stackcheck_reports.categories import HARNESS_ERROR, LAB_DEFECT, UNREACHABLE, classify
from stackcheck_reports.cli import report
from stackcheck_reports.ids import check_ids
from stackcheck_reports.redact import redact
from stackcheck_reports.regression import compare, to_markdown
from stackcheck_reports.secretscan import needles, scan
from stackcheck_reports.store import CheckOutcome, RunRecord, Store, read_results
from stackcheck_reports.waivers import WaiverError, load_waivers

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "reports"
# Built at run time so no private-key block sits in the repository.
BEGIN, END = "-----BEGIN OPENSSH " + "PRIVATE KEY-----", "-----END OPENSSH " + "PRIVATE KEY-----"
FAKE_KEY = "\n".join([
    BEGIN,
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
    "QyNTUxOQAAACBmYWtlLWtleS1mb3Itc3RhY2tjaGVjay1oYXJuZXNzLXRlc3RzAAAAmHN0",
    END,
]) + "\n"


# --- stable ids -------------------------------------------------------------------


def test_every_suite_check_has_a_unique_allure_id() -> None:
    problems = check_ids(REPO / "suites")
    assert not problems, "checks need a unique @allure.id:\n" + "\n".join(problems)


def test_id_check_finds_missing_and_duplicate_ids(tmp_path: Path) -> None:
    (tmp_path / "test_a.py").write_text(textwrap.dedent("""
        import allure
        @allure.id("x-1")
        def test_one(): pass
        @allure.id("x-1")
        def test_two(): pass
        class TestGroup:
            def test_three(self): pass
    """))
    problems = check_ids(tmp_path)
    assert len(problems) == 2, problems
    assert ": test_two: allure id 'x-1' already used by" in problems[0]
    assert ": test_three: no @allure.id" in problems[1]


# --- redaction and the secret scan ----------------------------------------------


def test_redaction_removes_kubeconfig_client_key_and_token() -> None:
    text = (DATA / "kubeconfig.yaml").read_text()
    out = redact(text)
    assert "client-key-data: [REDACTED]" in out
    assert "token: [REDACTED]" in out
    assert "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVkt" not in out
    assert "server: https://10.0.0.11:6443" in out  # what is not secret stays readable


def test_redaction_removes_pem_keys_passwords_and_authorization() -> None:
    text = (f"before\n{FAKE_KEY}after\n"
            "clouds:\n  lab:\n    auth:\n      password: 'hunter2hunter2'\n"
            'curl -H "Authorization: Bearer eyJhbGciOi.abc" https://10.0.0.11:6443\n'
            '{"password": "pw\\"quoted", "user": "admin"}\n'
            "https://root:s3cret@10.0.0.11:2379/health\n")
    out = redact(text)
    assert "b3BlbnNzaC1rZXkt" not in out and "PRIVATE KEY----- [REDACTED]" in out
    assert "hunter2" not in out and "eyJhbGciOi" not in out and "s3cret" not in out
    assert '"password": "[REDACTED]"' in out and '"user": "admin"' in out
    assert out.startswith("before\n") and "\nafter\n" in out


def test_secret_scan_finds_a_planted_key(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text(FAKE_KEY)
    results = tmp_path / "results"
    results.mkdir()
    (results / "a-result.json").write_text(json.dumps({"name": "t", "status": "passed"}))
    assert scan(results, needles([key])) == []
    # a line of the key inside an attachment, as a careless check would leave it
    (results / "b-attachment.txt").write_text("debug:\n" + FAKE_KEY.splitlines()[2] + "\n")
    (results / "c-result.json").write_text(json.dumps({"message": FAKE_KEY}))
    found = {(f.path.name, f.what) for f in scan(results, needles([key]))}
    assert ("b-attachment.txt", "a line of id_ed25519") in found
    assert ("c-result.json", "a PEM private-key block") in found


def test_secret_scan_ignores_redacted_blocks(tmp_path: Path) -> None:
    (tmp_path / "x-attachment.txt").write_text(redact(FAKE_KEY))
    assert scan(tmp_path) == []


# --- categories and waivers ---------------------------------------------------------


def test_categories_split_lab_defects_unreachable_and_harness_errors() -> None:
    assert classify("failed", "AssertionError: h2: flannel.1 MTU 1500") == LAB_DEFECT
    assert classify("broken", "stackcheck.waits.WaitTimeout: timed out after 5s") == UNREACHABLE
    assert classify("broken", "paramiko.ssh_exception.NoValidConnectionsError: x") == UNREACHABLE
    assert classify("broken", "KeyError: 'leader'") == HARNESS_ERROR
    assert classify("passed", None) is None


def test_waivers_load_and_expire() -> None:
    waivers = load_waivers(DATA / "waivers-valid.yaml")
    assert [w.test for w in waivers] == ["demo-waived", "*test_other_thing*"]
    assert waivers[1].matches(None, "suites/x/test_a.py::test_other_thing[h1]")
    assert not any(w.expired(dt.date(2030, 1, 1)) for w in waivers)
    assert load_waivers(DATA / "waivers-expired.yaml")[0].expired()


def test_a_malformed_waiver_names_file_line_and_field() -> None:
    with pytest.raises(WaiverError) as exc:
        load_waivers(DATA / "waivers-bad.yaml")
    message = str(exc.value)
    assert message.startswith(f"{DATA / 'waivers-bad.yaml'}:")
    assert "waivers[1]" in message


# --- a real pytest run with the plugin ---------------------------------------------

CONFTEST = '''
import types
import pytest
import stackcheck_reports.mustgather as mustgather
from stackcheck_reports.session import LAB_KEY, RUN_ID_KEY
from stackcheck.lab import Lab

pytest_plugins = ["stackcheck_reports.plugin", "stackcheck_fixtures.labels"]

def pytest_configure(config):
    here = config.rootpath
    config.stash[RUN_ID_KEY] = (here / "run_id").read_text().strip()
    config.stash[LAB_KEY] = Lab.model_validate({
        "name": "fake", "provisioner": "fake",
        "ssh": {"identity_file": str(here / "id_ed25519"),
                "known_hosts": str(here / "known_hosts")},
        "hosts": [{"name": "h1", "address": "10.0.0.11"}, {"name": "h2", "address": "10.0.0.12"}],
        "environment": {"etcd.version": "3.4.23", "flannel.kind": "vxlan"},
    })

class FakeConnection:
    def __init__(self, name):
        self.name = name
    def run(self, command):
        return types.SimpleNamespace(rc=0, stderr="",
            stdout=f"{self.name} ran: {command}\\nclient-key-data: LS0tTOPSECRETLS0t\\n")

mustgather.connect = lambda lab, host: FakeConnection(host.name)

@pytest.fixture(scope="session")
def lab(request):
    return request.config.stash[LAB_KEY]

@pytest.fixture(params=["h1", "h2"])
def lab_host(request, lab):
    return lab.host(request.param)
'''

CHECKS = '''
from pathlib import Path
import allure
from stackcheck_reports.evidence import attach_json, attach_table, attach_text, measure, step

@allure.id("demo-pass")
@allure.feature("demo group")
@allure.severity("critical")
def test_passes_with_evidence(lab):
    """Evidence is attached, redacted."""
    with step("call the API with Authorization: Bearer abc.def.ghi"):
        attach_text("kubeconfig", "users:\\n- user:\\n    client-key-data: LS0tSECRETKEY\\n")
        attach_json("status", {"password": "pw-123456", "ok": True})
        attach_table("ping matrix", [{"from": "h1", "to": "h2", "ok": "yes"}])
    measure("etcd failover", 2.2)

@allure.id("demo-host")
def test_host_is_h1(lab, lab_host):
    assert lab_host.name == "h1", f"{lab_host.name}: expected h1"

@allure.id("demo-unreachable")
def test_unreachable():
    raise TimeoutError("timed out connecting to 10.0.0.12:22")

@allure.id("demo-waived")
def test_known_failure():
    assert False, "known"

@allure.id("demo-flaky")
def test_flaky():
    seen = Path(__file__).parent / "flaky.seen"
    if not seen.exists():
        seen.write_text("1")
        assert False, "first attempt fails"
'''


@pytest.fixture
def plugin_dir(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    (pytester.path / "id_ed25519").write_text(FAKE_KEY)
    (pytester.path / "known_hosts").write_text("")
    (pytester.path / "run_id").write_text("run-1\n")
    pytester.makepyfile(test_checks=CHECKS)
    return pytester


def _results(folder: Path) -> dict[str, dict]:
    found: dict[str, dict] = {}
    results = [json.loads(p.read_text()) for p in folder.glob("*-result.json")]
    for result in sorted(results, key=lambda r: r["stop"]):
        found[result["name"]] = result  # the last attempt wins
    return found


def _labels(result: dict, name: str) -> list[str]:
    return [x["value"] for x in result["labels"] if x["name"] == name]


def _attachments(result: dict, folder: Path) -> dict[str, str]:
    items = list(result.get("attachments", []))
    for step in result.get("steps", []):
        items += step.get("attachments", [])
    return {a["name"]: (folder / a["source"]).read_text() for a in items}


def test_a_run_leaves_labelled_redacted_results_and_a_stored_run(plugin_dir) -> None:
    results = plugin_dir.path / "allure-results"
    run = plugin_dir.runpytest_subprocess(
        f"--alluredir={results}", f"--waivers={DATA / 'waivers-valid.yaml'}",
        "--reruns=1", "--junitxml=junit.xml", "-p", "no:cacheprovider")
    run.assert_outcomes(passed=3, failed=2, xfailed=1)
    assert run.parseoutcomes()["rerun"] == 3
    assert run.ret == pytest.ExitCode.TESTS_FAILED
    by_name = _results(results)

    passed = by_name["test_passes_with_evidence"]
    assert _labels(passed, "as_id") == ["demo-pass"]
    assert _labels(passed, "feature") == ["demo group"]
    assert _labels(passed, "story") == ["Evidence is attached, redacted."]
    assert _labels(passed, "severity") == ["critical"]
    assert _labels(passed, "measurement") == ["etcd failover=2.2"]
    assert passed["steps"][0]["name"] == "call the API with Authorization: Bearer [REDACTED]"
    files = _attachments(passed, results)
    assert "client-key-data: [REDACTED]" in files["kubeconfig"]
    assert "SECRETKEY" not in files["kubeconfig"] and "pw-123456" not in files["status"]
    assert "<td>h2</td>" in files["ping matrix"]

    failed = by_name["test_host_is_h1[h2]"]
    assert failed["status"] == "failed"
    # allure-pytest's own "host" label names the runner; ours is "lab_host"
    assert _labels(failed, "lab_host") == ["h2"] and _labels(failed, "feature") == ["checks"]
    bundle = _attachments(failed, results)["must-gather h2"]
    assert "h2 ran: timeout 5 sh -c 'ip addr'" in bundle and "ostree admin status" in bundle
    assert "TOPSECRET" not in bundle
    assert "must-gather h1" not in _attachments(by_name["test_host_is_h1[h1]"], results)
    assert _labels(by_name["test_known_failure"], "waived")[0].startswith("demo-waived: known")
    assert by_name["test_flaky"]["status"] == "passed"
    assert _labels(by_name["test_flaky"], "flaky") == ["passed on attempt 2"]

    env = (results / "environment.properties").read_text()
    assert "run.id=run-1" in env and "lab.hosts=2" in env and "etcd.version=3.4.23" in env
    categories = [c["name"] for c in json.loads((results / "categories.json").read_text())]
    assert categories == [*(f"blocked by {layer}" for layer in health_lines()), UNREACHABLE,
                          LAB_DEFECT, HARNESS_ERROR]

    stored = Store(plugin_dir.path / ".stackcheck" / "history").load("run-1")
    assert stored.tests["demo-flaky"].flaky and stored.tests["demo-flaky"].attempts == 2
    assert stored.tests["demo-waived"].status == "waived"
    assert stored.tests["demo-unreachable"].category == UNREACHABLE
    assert stored.tests["demo-host[lab_host='h2']"].status == "failed"
    assert stored.tests["demo-pass"].measurements == {"etcd failover": 2.2}
    assert stored.junitxml.endswith("junit.xml") and stored.environment["run.id"] == "run-1"


def test_an_expired_waiver_fails_a_green_run(plugin_dir) -> None:
    run = plugin_dir.runpytest_subprocess(
        f"--waivers={DATA / 'waivers-expired.yaml'}", "-k", "passes_with_evidence")
    run.assert_outcomes(passed=1)
    assert run.ret == pytest.ExitCode.TESTS_FAILED
    run.stdout.fnmatch_lines(["*expired waivers fail this run*", "*EXPIRED demo-pass*2020-01-31*"])


def test_a_malformed_waivers_file_stops_the_run(plugin_dir) -> None:
    run = plugin_dir.runpytest_subprocess(f"--waivers={DATA / 'waivers-bad.yaml'}")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    run.stderr.fnmatch_lines(["*waivers-bad.yaml:*waivers[[]1[]]*"])


def test_a_leaked_key_fails_the_run_loudly(plugin_dir) -> None:
    plugin_dir.makepyfile(test_leak='''
        import allure
        def test_leaks(lab):
            allure.attach(lab.ssh.identity_file.read_text(), name="oops")
    ''')
    results = plugin_dir.path / "allure-results"
    run = plugin_dir.runpytest_subprocess(f"--alluredir={results}", "-k", "leaks")
    run.assert_outcomes(passed=1)
    assert run.ret == 7
    run.stdout.fnmatch_lines(["*SECRETS FOUND IN THE ALLURE RESULTS*",
                              "*-attachment*: contents of id_ed25519*"])
    assert "b3BlbnNzaC1rZXkt" not in run.stdout.str()


def test_failure_messages_and_captured_output_are_redacted(plugin_dir) -> None:
    """What allure-pytest records by itself (the exception, the traceback, captured output)
    is redacted too: here the lab's SSH key, a token and a password, quoted by a failing check."""
    plugin_dir.makepyfile(test_quote="""
        import allure
        @allure.id("demo-quotes")
        def test_quotes_secrets(lab):
            key = lab.ssh.identity_file.read_text()
            print("OS_PASSWORD=hunter2-hunter2")
            assert False, f"kubeconfig token: abc.def.ghi-0123456789 and key {key}"
    """)
    results = plugin_dir.path / "allure-results"
    run = plugin_dir.runpytest_subprocess(f"--alluredir={results}", "-k", "quotes",
                                          "--no-must-gather")
    run.assert_outcomes(failed=1)
    assert run.ret == pytest.ExitCode.TESTS_FAILED, "redacted results are safe: no exit 7"
    result = _results(results)["test_quotes_secrets"]
    details = result["statusDetails"]["message"] + result["statusDetails"]["trace"]
    assert "[REDACTED]" in details
    for secret in ("abc.def.ghi-0123456789", "b3BlbnNzaC1rZXkt"):
        assert secret not in details
    stdout = _attachments(result, results)["stdout"]
    assert "hunter2" not in stdout and "OS_PASSWORD=[REDACTED]" in stdout


def test_a_setup_failure_gets_a_must_gather_bundle_too(plugin_dir) -> None:
    plugin_dir.makepyfile(test_setup_fail="""
        import allure, pytest

        @pytest.fixture
        def pods(lab):
            raise RuntimeError("the pods never ran")

        @allure.id("demo-setup-fails")
        def test_needs_pods(lab, lab_host, pods):
            pass
    """)
    results = plugin_dir.path / "allure-results"
    run = plugin_dir.runpytest_subprocess(f"--alluredir={results}", "-k", "needs_pods")
    run.assert_outcomes(errors=2)
    result = _results(results)["test_needs_pods[h2]"]
    assert result["status"] == "broken"
    bundle = _attachments(result, results)["must-gather h2"]
    assert "h2 ran:" in bundle and "TOPSECRET" not in bundle


# --- the regression summary ----------------------------------------------------------


def _write_result(folder: Path, name: str, status: str, start: float, seconds: float,
                  **labels: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    result = {
        "name": name, "status": status, "historyId": name, "fullName": f"checks#{name}",
        "start": int(start * 1000), "stop": int((start + seconds) * 1000),
        "labels": [{"name": "as_id", "value": name}] + [
            {"name": k, "value": v} for k, v in labels.items()],
        "statusDetails": {"message": "AssertionError: h2: no leader"} if status != "passed" else {},
    }
    (folder / f"{name}-{start}-{status}-result.json").write_text(json.dumps(result))


def _two_nights(tmp_path: Path) -> Store:
    """Night 1 and night 2 of a small suite, stored as the plugin would store them."""
    store = Store(tmp_path / "history")
    night1, night2 = tmp_path / "night1", tmp_path / "night2"
    t1, t2 = 1_700_000_000.0, 1_700_086_400.0
    for name, status, secs in [("still", "failed", 1), ("fixed", "failed", 1),
                               ("newbad", "passed", 1), ("slow", "passed", 1.0)]:
        _write_result(night1, name, status, t1, secs)
    _write_result(night1, "failover", "passed", t1, 1, measurement="etcd failover=2.0")
    for name, status, secs in [("still", "failed", 1), ("fixed", "passed", 1),
                               ("newbad", "failed", 1), ("slow", "passed", 3.0)]:
        _write_result(night2, name, status, t2, secs)
    _write_result(night2, "failover", "passed", t2, 1, measurement="etcd failover=5.5")
    _write_result(night2, "rerun", "failed", t2, 1)  # first attempt ...
    _write_result(night2, "rerun", "passed", t2 + 2, 1)  # ... passed on rerun
    store.save(read_results(night1, run_id="night-1"))
    store.save(read_results(night2, run_id="night-2"))
    return store


def test_two_runs_give_new_failure_fix_flaky_and_slower(tmp_path: Path) -> None:
    store = _two_nights(tmp_path)
    current = store.load("night-2")
    summary = compare(current, store.before("night-2"))
    assert [e["key"] for e in summary.newly_failing] == ["newbad"]
    assert [e["key"] for e in summary.fixed] == ["fixed"]
    assert [(e["key"], e["since"]) for e in summary.still_failing] == [("still", "night-1")]
    flaky = [(e["key"], e["why"]) for e in summary.flaky]
    assert flaky == [("rerun", "passed on rerun (attempt 2)")]
    assert {(e["key"], e["what"]) for e in summary.slower} == {
        ("slow", "duration"), ("failover", "etcd failover")}
    assert summary.exit_code == 1
    markdown = to_markdown(summary)
    assert markdown.startswith("## stackcheck run night-2: NEW FAILURES")
    assert "### Newly failing (1)" in markdown and "`newbad` — lab defect" in markdown
    assert "--junitxml" in markdown


def test_flipping_across_runs_is_flaky() -> None:
    def run(i: int, status: str) -> RunRecord:
        test = CheckOutcome(key="flip", name="flip", status=status, duration=1.0)
        return RunRecord(run_id=f"r{i}", start=float(i), end=float(i), tests={"flip": test})
    runs = [run(1, "passed"), run(2, "failed"), run(3, "passed"), run(4, "passed")]
    summary = compare(runs[3], list(reversed(runs[:3])))
    assert [e["why"] for e in summary.flaky] == ["flipped 2 times in 4 runs"]
    assert summary.exit_code == 0


def test_report_command_since_last_and_waivers(tmp_path: Path) -> None:
    store = _two_nights(tmp_path)
    cli = CliRunner()
    args = ["--no-html", "--history-dir", str(store.root), "--results", str(tmp_path / "none"),
            "--since-last"]
    done = cli.invoke(report, args)
    assert done.exit_code == 1, done.output
    assert "### Newly failing (1)" in done.output
    saved = json.loads((store.root / "night-2" / "summary.json").read_text())
    assert saved["exit_code"] == 1 and saved["compared_with"] == ["night-1"]

    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("waivers:\n- {test: newbad, reason: r, ticket: T-1, expires: 2999-01-01}\n")
    done = cli.invoke(report, [*args, "--waivers", str(waivers)])
    assert done.exit_code == 0, done.output
    assert "### Waived (1)" in done.output

    done = cli.invoke(report, [*args, "--waivers", str(DATA / "waivers-expired.yaml")])
    assert done.exit_code == 1 and "### Expired waivers (fail the run) (1)" in done.output


# --- the HTML report --------------------------------------------------------------------


def test_render_without_node_is_one_clear_line(tmp_path: Path, monkeypatch) -> None:
    _write_result(tmp_path / "results", "ok", "passed", 1_700_000_000.0, 1)
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    with pytest.raises(render.RenderError, match=r"needs Node\.js and npm"):
        render.render(tmp_path / "results", tmp_path / "out", engine="allure3",
                      cache=tmp_path / "cache")


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["allure2", "allure3"])
def test_render_offline_html_with_history(tmp_path: Path, engine: str) -> None:
    if not (render.CACHE / engine / "node_modules" / ".bin" / "allure").exists():
        pytest.skip(f"{engine} CLI not installed in {render.CACHE} (stackcheck report installs it)")
    if engine == "allure2" and not render.shutil.which("java"):
        pytest.skip("no java")
    store = _two_nights(tmp_path)
    del store
    out = tmp_path / "report"
    render.render(tmp_path / "night1", out, engine=engine)
    index = render.render(tmp_path / "night2", out, engine=engine)
    assert index.stat().st_size > 10_000
    assert "googletagmanager" not in index.read_text(errors="replace")
    history = out / ("history" if engine == "allure2" else "history.jsonl")
    assert history.exists()


def test_must_gather_collects_every_services_log_through_the_inventory(tmp_path: Path) -> None:
    """The local lab's template (a log file per service), run by a real shell: Docker's log
    is there although Docker is stopped; services without a log are named on one line."""
    from stackcheck.lab import Host, ServiceControl

    (tmp_path / "docker.log").write_text("".join(f"line {i}\n" for i in range(30))
                                         + "level=info msg=\"Daemon shutdown complete\"\n")
    (tmp_path / "etcd.log").write_text("etcd: ready to serve client requests\n")
    control = ServiceControl(logs=f"tail -n {{lines}} {tmp_path}/{{unit}}.log",
                             units={"etcd": "etcd", "docker": "docker", "kubelet": "kubelet"})
    host = Host(name="h1", address="10.0.0.11", service_control=control)
    script = dict(mustgather.commands(host))["service logs"]
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    assert f"== etcd: tail -n {mustgather.LOG_LINES} {tmp_path}/etcd.log\n" \
           "etcd: ready to serve client requests\n" in out
    assert 'level=info msg="Daemon shutdown complete"' in out and "line 10\n" not in out
    assert out.rstrip().endswith("== no log: kubelet")
    assert ServiceControl().log_command("docker", 20) == "journalctl -u docker -n 20 --no-pager -q"
