"""The lab picture (stackcheck.picture), its Allure overview result, titles and the suite
tree, CI metadata, and the small CLI promises of issue 18. No lab, no network."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackcheck.etcd.picture import PICTURE as ETCD
from stackcheck.etcd.picture import Member
from stackcheck.flannel.picture import PICTURE as FLANNEL
from stackcheck.flannel.picture import Overlay
from stackcheck.kubernetes.picture import PICTURE as KUBERNETES
from stackcheck.kubernetes.picture import Node
from stackcheck.lab import EtcdAccess, Lab
from stackcheck.picture.model import BAD, UNKNOWN, HostView, PreflightLayer, Probing, Snapshot
from stackcheck.picture.probe import each_host, gather
from stackcheck.picture.runfiles import latest_run_dir, read_pingmatrix, read_preflight
from stackcheck.picture.svg import render
from stackcheck_cli.main import main
from stackcheck_provisioners.hostlab.progress import Progress
from stackcheck_reports import overview
from stackcheck_reports.allure_env import executor
from stackcheck_reports.store import read_results

SVG = "{http://www.w3.org/2000/svg}"

PREFLIGHT = {"elapsed_s": 1.3, "layers": {
    "ssh": {"ok": False, "summary": "h3 does not answer: no SSH within 10 s", "down": ["h3"]},
    "etcd": {"ok": True, "summary": "quorum: 2 of 3 members answer", "down": []},
}}
PINGS = {"kind": "pods", "hosts": ["h1", "h2", "h3"], "pairs": {
    "h1->h2": {"status": "ok", "detail": "ok"},
    "h2->h1": {"status": "recovered", "detail": "lost at first"},
    "h1->h3": {"status": "failed", "detail": "no reply"},
    "h3->h1": {"status": "failed", "detail": "no reply"},
    "h2->h3": {"status": "bogus"},
}}


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "evidence").mkdir(parents=True)
    (run / "preflight.json").write_text(json.dumps(PREFLIGHT))
    (run / "evidence" / "pingmatrix.json").write_text(json.dumps(PINGS))
    return run


def _lab(ssh_files: Path) -> Lab:
    return Lab.model_validate({
        "name": "pic", "provisioner": "fake",
        "ssh": {"identity_file": str(ssh_files / "id_ed25519"),
                "known_hosts": str(ssh_files / "known_hosts")},
        "hosts": [{"name": f"h{i}", "address": f"127.18.0.1{i}",
                   "roles": ["etcd", "flannel", "node"]} for i in (1, 2, 3)],
    })


def _snapshot(layers: set[str] | None = None) -> Snapshot:
    """Three hosts as etcd, flannel and Kubernetes would report them: h2's etcd member does
    not answer, h3's flannel device is missing (each layer's part drawn from its own data)."""
    hosts = [HostView(f"h{i}", f"127.18.0.1{i}", ["etcd", "flannel", "node"],
                      services={"etcd": "active", "sshd": "active"}) for i in (1, 2, 3)]
    hosts[1].services = {"etcd": "inactive", "sshd": "active"}
    members = [Member(f"https://127.18.0.1{i}:2379", f"h{i}", healthy=i != 2, leader=i == 1,
                      detail="connection refused" if i == 2 else "v3.4.23")
               for i in (1, 2, 3)]
    overlays = {f"h{i}": Overlay(f"10.244.{i}.0/24", "flannel.1", i != 3,
                                 "flannel.1 missing" if i == 3 else "flannel.1: vxlan id 1, up")
                for i in (1, 2, 3)}
    nodes = [Node(f"h{i}", "True") for i in (1, 2, 3)]
    return Snapshot("pic", "local", hosts, layers=layers, parts={
        "etcd": ETCD.view(hosts, members),
        "kubernetes": KUBERNETES.view(hosts, nodes),
        "flannel": FLANNEL.view(hosts, overlays),
    })


# --- the run's files ------------------------------------------------------------------


def test_run_files_are_optional_and_malformed_ones_become_notes(tmp_path: Path) -> None:
    notes: list[str] = []
    assert read_preflight(tmp_path, notes) is None and read_pingmatrix(tmp_path, notes) is None
    assert notes == []
    (tmp_path / "preflight.json").write_text("{not json")
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "pingmatrix.json").write_text('["a list"]')
    assert read_preflight(tmp_path, notes) is None and read_pingmatrix(tmp_path, notes) is None
    assert len(notes) == 2 and "preflight.json unreadable" in notes[0]


def test_run_files_are_read(tmp_path: Path) -> None:
    run, notes = _run_dir(tmp_path), []
    layers = read_preflight(run, notes)
    assert layers["ssh"] == PreflightLayer(False, PREFLIGHT["layers"]["ssh"]["summary"], ["h3"])
    ping = read_pingmatrix(run, notes)
    assert ping.hosts == ["h1", "h2", "h3"] and ping.status("h2", "h1") == "recovered"
    assert ping.status("h2", "h3") is None  # an unknown status word is not drawn as anything
    assert sorted(ping.failed()) == ["h1->h3", "h3->h1"] and notes == []


def test_latest_run_dir_is_the_newest_run_of_the_lab(tmp_path: Path) -> None:
    for run_id, name in (("20261130-090000-a", "pic"), ("20261130-100000-b", "pic"),
                         ("20261130-110000-c", "other")):
        (tmp_path / run_id).mkdir()
        (tmp_path / run_id / "lab.json").write_text(json.dumps({"name": name}))
    assert latest_run_dir(tmp_path, "pic").name == "20261130-100000-b"
    assert latest_run_dir(tmp_path, "nope") is None and latest_run_dir(tmp_path / "x", "p") is None


# --- the drawing ------------------------------------------------------------------------


def _shown(text: ET.Element) -> str:
    """What a ``<text>`` shows (its ``<title>`` is a tooltip)."""
    return (text.text or "") + "".join(child.tail or "" for child in text)


def test_the_picture_shows_failed_parts(tmp_path: Path) -> None:
    snap = _snapshot()
    snap.preflight = read_preflight(_run_dir(tmp_path), [])
    snap.ping = read_pingmatrix(_run_dir(tmp_path / "again"), [])
    problems = snap.problems()
    assert "h2: etcd inactive" in problems and "h3: overlay flannel.1 missing" in problems
    assert "h2: etcd member does not answer (connection refused)" in problems
    assert not [p for p in problems if p.startswith("h1")]  # the healthy host is not blamed
    assert any(p.startswith("preflight ssh: h3") for p in problems)
    assert any("h1->h3" in p and "h3->h1" in p for p in problems)
    root = ET.fromstring(render(snap))  # well-formed, self-contained SVG
    texts = [_shown(t) for t in root.iter(f"{SVG}text")]
    assert any(t == f"{len(problems)} problems" for t in texts)
    assert "etcd: ★ leader, healthy" in texts and "etcd: DOWN: connection refused" in texts
    assert "etcd: 3 members, 2 healthy, leader h1" in texts
    assert "kubernetes: 3 nodes, 3 Ready" in texts
    lines = {_shown(t): t.get("class") for t in root.iter(f"{SVG}text") if t.get("class")}
    assert lines["etcd: DOWN: connection refused"] == "line bad"  # drawn red, on h2's card
    assert lines["flannel.1 missing"] == "line bad" and lines["flannel.1: vxlan id 1, up"] == \
        "line ok"
    assert "flannel: 10.244.1.0/24" in texts and "DOWN (ssh)" in texts
    cells = [r.get("class") for r in root.iter(f"{SVG}rect")
             if r.get("class", "").startswith("pair")]
    assert cells.count("pair failed") == 2 and cells.count("pair recovered") == 1
    cards = [r.get("class") for r in root.iter(f"{SVG}rect") if "host" in r.get("class", "")]
    assert cards == ["host healthy", "host failed", "host failed"]
    assert root.find(f"{SVG}script") is None and "href" not in render(snap)


def test_a_healthy_lab_is_green_and_unknown_parts_are_grey(ssh_files: Path) -> None:
    hosts = [HostView("h1", "127.18.0.11", ["etcd", "flannel", "node"], {"etcd": "active"})]
    snap = Snapshot("pic", "local", hosts, parts={
        "etcd": ETCD.view(hosts, [Member("https://127.18.0.11:2379", "h1", True, True)]),
        "flannel": FLANNEL.view(hosts, {"h1": Overlay("10.244.1.0/24", "flannel.1", True,
                                                      "flannel.1: vxlan id 1, up")}),
    })
    assert snap.problems() == []
    svg = render(snap)
    assert "every part drawn is healthy" in svg and "host failed" not in svg
    snap = gather(_lab(ssh_files), probe=False)  # nothing probed: grey, no problems
    assert snap.problems() == [] and list(snap.parts) == ["etcd", "kubernetes", "runtime",
                                                          "flannel"]  # the layers' order
    assert {line.state for part in snap.parts.values() for lines in part.hosts.values()
            for line in lines} == {UNKNOWN}  # None is not known, never healthy
    bare = render(snap)
    assert "services: not read" in bare and "ping matrix: not measured" in bare
    assert "preflight: no verdict" in bare and "etcd: not read" in bare
    assert "flannel: not read" in bare and "host failed" not in bare


def test_a_partial_run_draws_only_its_layers() -> None:
    snap = _snapshot(layers={"etcd"})
    problems = snap.problems()
    assert "h2: etcd member does not answer (connection refused)" in problems
    assert not [p for p in problems if "flannel" in p or p.startswith("h3")]
    root = ET.fromstring(render(snap))
    texts = [_shown(t) for t in root.iter(f"{SVG}text")]
    assert not [t for t in texts if t.startswith(("flannel", "kubernetes"))]
    cards = [r.get("class") for r in root.iter(f"{SVG}rect") if "host" in r.get("class", "")]
    assert cards == ["host healthy", "host failed", "host healthy"]  # h3: only flannel broke


def test_a_layer_without_data_draws_its_hosts_as_not_read() -> None:
    hosts = [HostView("h1", "127.18.0.11", ["etcd"]), HostView("h2", "127.18.0.12", [])]
    part = ETCD.view(hosts, None)
    assert [x.text for x in part.hosts["h1"]] == ["etcd: not read"]
    assert [x.text for x in part.hosts["h2"]] == ["etcd: not a member"]
    assert part.cluster == [] and part.problems == []
    assert FLANNEL.view([HostView("h2", "127.18.0.12", [])], None).hosts == {}  # no such role
    down = KUBERNETES.view([*hosts[:1], HostView("h2", "x", ["node"])],
                           [Node("h2", "False", "KubeletNotReady")])
    assert down.hosts["h2"][0].state == BAD and down.hosts["h1"][0].state == UNKNOWN
    assert down.problems == ["h2: Kubernetes node Ready=False"]


def test_each_host_is_read_at_once_and_bounded(ssh_files: Path) -> None:
    import time

    lab = _lab(ssh_files)
    probing = Probing(frozenset({"h3"}), [], timeout=0.6)

    def read(host):
        if host.name == "h2":
            time.sleep(5)
        return host.address

    started = time.monotonic()
    found = each_host(lab.hosts, read, "thing", probing)
    assert time.monotonic() - started < 1.5
    assert found == {"h1": "127.18.0.11"}  # h3 not dialled: the preflight found it down
    assert probing.notes == ["h2: thing not read: no answer within 0.3s"]


# --- the Allure overview result ------------------------------------------------------


def test_the_overview_result_carries_the_picture_and_is_no_check(tmp_path: Path,
                                                                  ssh_files: Path) -> None:
    snap = gather(_lab(ssh_files), run_dir=_run_dir(tmp_path), run_id="r1", probe=False)
    results = tmp_path / "results"
    picture = overview.write(results, snap, started_ms=1_700_000_000_000)
    assert picture == results / "lab-overview.svg" and "<svg" in picture.read_text()
    [path] = results.glob("*-result.json")
    result = json.loads(path.read_text())
    labels = {x["name"]: x["value"] for x in result["labels"]}
    assert result["name"] == "Lab overview" and result["status"] == "failed"
    assert labels["parentSuite"] == "(lab)" and overview.is_overview(result)
    assert "preflight ssh: h3" in result["statusDetails"]["message"]
    assert result["start"] < 1_700_000_000_000  # first in time order
    attachment = result["attachments"][0]
    assert attachment["type"] == "image/svg+xml" and (results / attachment["source"]).exists()
    assert "data:image/svg+xml;base64," in result["descriptionHtml"]
    [globals_file] = results.glob("*-globals.json")
    assert json.loads(globals_file.read_text())["attachments"][0]["name"] == "lab picture"
    assert read_results(results).tests == {}


# --- titles and the suite tree -------------------------------------------------------

TREE_CONFTEST = '''
import pytest
pytest_plugins = ["stackcheck_fixtures.labels"]

@pytest.fixture(params=["h1", "h2"])
def lab_host(request):
    return request.param
'''

TREE_CHECKS = '''
import allure, pytest

pytestmark = allure.feature("daemon")

def test_daemon_answers(lab_host):
    """The daemon answers 'docker info'."""

@pytest.mark.parametrize("resource", ["cpu"])
def test_request_larger_than_any_node_stays_pending(resource):
    pass

@allure.title("Chosen by the author")
def test_named():
    pass
'''


def test_checks_get_titles_and_a_layer_group_host_tree(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(TREE_CONFTEST)
    (pytester.path / "suites" / "docker").mkdir(parents=True)
    (pytester.path / "suites" / "docker" / "test_daemon.py").write_text(TREE_CHECKS)
    (pytester.path / "suites" / "etcd").mkdir(parents=True)
    (pytester.path / "suites" / "etcd" / "test_health.py").write_text(
        "def test_cluster_size_is_odd():\n    pass\n")
    results = pytester.path / "results"
    run = pytester.runpytest_subprocess(f"--alluredir={results}", "-p", "no:cacheprovider",
                                        "suites")
    run.assert_outcomes(passed=5)
    found = {}
    for path in results.glob("*-result.json"):
        result = json.loads(path.read_text())
        labels = {x["name"]: x["value"] for x in result["labels"]}
        found[result["name"]] = tuple(labels.get(k) for k in ("parentSuite", "suite", "subSuite"))
    assert found == {
        "Daemon answers on h1": ("docker", "daemon", "h1"),
        "Daemon answers on h2": ("docker", "daemon", "h2"),
        "Request larger than any node stays pending (cpu)": ("docker", "daemon", None),
        "Chosen by the author": ("docker", "daemon", None),
        "Cluster size is odd": ("etcd", "health", None),
    }


# --- CI metadata -------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "name", "build", "report"), [
    ({"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com",
      "GITHUB_REPOSITORY": "org/lab", "GITHUB_RUN_ID": "991", "GITHUB_RUN_NUMBER": "42",
      "GITHUB_WORKFLOW": "nightly"},
     "nightly #42", "https://github.com/org/lab/actions/runs/991",
     "https://github.com/org/lab/actions/runs/991"),
    ({"GITLAB_CI": "true", "CI_JOB_NAME": "stackcheck", "CI_PIPELINE_IID": "7",
      "CI_JOB_URL": "https://gitlab.example/org/lab/-/jobs/55"},
     "stackcheck #7", "https://gitlab.example/org/lab/-/jobs/55",
     "https://gitlab.example/org/lab/-/jobs/55/artifacts/file/allure-report/index.html"),
    ({"JENKINS_URL": "https://ci.example/", "JOB_NAME": "lab-nightly", "BUILD_NUMBER": "12",
      "BUILD_URL": "https://ci.example/job/lab-nightly/12/"},
     "lab-nightly #12", "https://ci.example/job/lab-nightly/12/",
     "https://ci.example/job/lab-nightly/12/artifact/allure-report/index.html"),
])
def test_executor_links_back_to_the_build(env: dict, name: str, build: str,
                                          report: str) -> None:
    found = executor(env)
    assert (found["buildName"], found["buildUrl"], found["reportUrl"]) == (name, build, report)
    assert found["buildOrder"] > 0 and found["reportName"] == "stackcheck"
    assert executor(env | {"STACKCHECK_REPORT_URL": "https://pages/r"})["reportUrl"] == \
        "https://pages/r"
    assert executor({}) is None


# --- small promises ------------------------------------------------------------------------


def test_lab_status_exits_2_without_a_lab(tmp_path: Path) -> None:
    done = CliRunner().invoke(main, ["lab", "status", "--lab-dir", str(tmp_path / "none")])
    assert done.exit_code == 2 and "no lab inventory" in done.output
    assert "0 every service is active" in CliRunner().invoke(main, ["lab", "status",
                                                                   "--help"]).output


def test_local_lab_progress_quotes_the_lab_name(capsys) -> None:
    progress = Progress("local lab lab")
    with progress.step("sshd on every host"):
        pass
    assert "local lab 'lab': sshd on every host" in capsys.readouterr().err
    assert Progress("local lab 'x'").title == "local lab 'x'"


def test_gather_turns_what_does_not_answer_into_down_parts_and_notes(ssh_files: Path) -> None:
    lab = _lab(ssh_files)
    lab.etcd = EtcdAccess(endpoints=["http://127.0.0.1:9"])  # loopback, nothing listens
    lab.hosts[0].roles = ["etcd"]  # no flannel host: nothing is read over SSH

    def status(_lab: Lab) -> dict:
        raise RuntimeError("status is broken")

    snap = gather(lab, status=status)
    [summary] = snap.parts["etcd"].cluster
    assert summary.text == "etcd: 1 members, 0 healthy, leader NONE" and summary.state == BAD
    assert any(n.startswith("service states: RuntimeError: status is broken") for n in snap.notes)
    problems = snap.problems()
    assert "etcd: no member reports a leader" in problems
    assert any(p.startswith("etcd member at http://127.0.0.1:9 does not answer") for p in problems)
    assert not [p for p in problems if p.startswith("h1")]  # no host is blamed for it
