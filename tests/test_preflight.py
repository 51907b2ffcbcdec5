"""Broken-lab verdicts without a lab: the preflight's per-layer verdicts, blocked checks
failing at once with one line, library errors as one line, messages that say what they saw."""

from __future__ import annotations

import json
import os
import types
from pathlib import Path

import pytest

from stackcheck import preflight
from stackcheck.errors import cut_line, etcd_error
from stackcheck.etcd import preflight as etcd_preflight
from stackcheck.lab import Lab
from stackcheck.waits import NotYet, WaitTimeout, wait_for
from stackcheck_fixtures.lab import pytest_cmdline_main
from stackcheck_reports import mustgather
from stackcheck_reports.categories import categories_json, classify


def _lab(ssh_files: Path, hosts: int = 3) -> Lab:
    return Lab.model_validate({
        "name": "t", "ssh": {"known_hosts": str(ssh_files / "known_hosts")},
        "hosts": [{"name": f"h{i}", "address": f"192.0.2.1{i}", "roles": ["etcd"]}
                  for i in range(1, hosts + 1)],
        "etcd": {"endpoints": [f"https://192.0.2.1{i}:2379" for i in range(1, hosts + 1)]},
    })


# --- verdicts ----------------------------------------------------------------------------


def test_etcd_majority_down_is_no_quorum_naming_the_members(ssh_files: Path) -> None:
    lab = _lab(ssh_files)
    health = etcd_preflight.etcd_health(lab, {
        "https://192.0.2.11:2379": None,
        "https://192.0.2.12:2379": "does not answer (connection refused)",
        "https://192.0.2.13:2379": "does not answer (timed out)",
    })
    assert health.status == preflight.DOWN and not health.ok
    assert health.down == ["h2", "h3"]
    assert health.summary == ("no quorum (1/3 healthy); h2: does not answer (connection "
                              "refused); h3: does not answer (timed out)")


def test_etcd_minority_down_keeps_the_layer_usable(ssh_files: Path) -> None:
    lab = _lab(ssh_files)
    health = etcd_preflight.etcd_health(lab, {
        "https://192.0.2.11:2379": None, "https://192.0.2.12:2379": None,
        "https://192.0.2.13:2379": "does not answer (timed out)",
    })
    assert health.status == preflight.DEGRADED and health.ok
    assert health.summary.startswith("quorum kept (2/3); h3: does not answer")


def test_ssh_health_names_each_unreachable_host(ssh_files: Path) -> None:
    lab = _lab(ssh_files)
    health = preflight.ssh_health(lab, {"h3": "no SSH on 192.0.2.13:22 within 10 s"})
    assert health.status == preflight.DEGRADED and health.down == ["h3"]
    assert health.summary == "h3 does not answer (h3: no SSH on 192.0.2.13:22 within 10 s)"
    assert preflight.ssh_health(lab, {}).summary == "all 3 hosts answer"


def test_verdict_round_trips_through_its_file(tmp_path: Path) -> None:
    verdict = preflight.Verdict(
        {"etcd": preflight.LayerHealth(preflight.DOWN, "no quorum", ["h2"])}, 1.234,
        {"h2": "no SSH"})
    again = preflight.Verdict.read(verdict.write(tmp_path / "preflight.json"))
    assert again == preflight.Verdict(verdict.layers, 1.23, {"h2": "no SSH"})
    data = json.loads((tmp_path / "preflight.json").read_text())
    assert data["layers"]["etcd"]["ok"] is False
    assert preflight.Verdict.read(tmp_path / "missing.json") is None


def test_the_preflight_of_an_unreachable_lab_is_bounded(ssh_files: Path) -> None:
    """Nothing listens on 127.0.0.1's port 9 (discard) here: every probe fails at once."""
    lab = Lab.model_validate({
        "name": "t", "ssh": {"known_hosts": str(ssh_files / "known_hosts"), "port": 9,
                             "connect_timeout": 2},
        "hosts": [{"name": "h1", "address": "127.0.0.1"}],
        "etcd": {"endpoints": ["http://127.0.0.1:9"]},
    })
    verdict = preflight.run(lab)
    assert verdict.elapsed_s < 2 + preflight.SLACK + 1
    assert verdict.unreachable == {"h1": "no SSH on 127.0.0.1:9: connection refused"}
    assert verdict.layers["etcd"].summary == (
        "no quorum (0/1 healthy); h1: does not answer (connection refused)")


# --- blocked checks and one-line errors, in a real pytest run ----------------------------

CONFTEST = '''
import json
import pytest
from stackcheck_reports.session import LAB_KEY, RUN_DIR_KEY, RUN_ID_KEY
from stackcheck.lab import Lab

pytest_plugins = ["stackcheck_fixtures.preflight", "stackcheck_fixtures.hosts",
                  "stackcheck_reports.plugin"]

def pytest_configure(config):
    here = config.rootpath
    config.stash[RUN_ID_KEY] = "run-1"
    config.stash[RUN_DIR_KEY] = here
    config.stash[LAB_KEY] = Lab.model_validate(json.loads((here / "lab.json").read_text()))

@pytest.fixture(scope="session")
def lab(request):
    return request.config.stash[LAB_KEY]

@pytest.fixture(scope="session")
def etcd_client(lab):
    raise AssertionError("a blocked check must not set up its fixtures")

@pytest.fixture
def host(lab_host):
    return lab_host
'''

FLANNEL_CHECKS = '''
import etcd3gw.exceptions

def test_reads_leases(etcd_client):
    pass

def test_plumbing(lab_host, host):
    pass

def test_gateway_times_out(lab_host):
    raise etcd3gw.exceptions.ConnectionTimeoutError(
        "HTTPSConnectionPool(host='192.0.2.12', port=2379): Read timed out. (read timeout=5)")
'''

ETCD_HEALTH = '''
import pytest
pytestmark = pytest.mark.owns("etcd")

def test_every_member_healthy(lab):
    pass
'''


@pytest.fixture
def broken_run(pytester: pytest.Pytester, ssh_files: Path) -> pytest.RunResult:
    lab = _lab(ssh_files)
    (pytester.path / "lab.json").write_text(lab.to_json())
    preflight.Verdict(
        {"ssh": preflight.LayerHealth(preflight.DEGRADED, "h3 does not answer", ["h3"]),
         "etcd": preflight.LayerHealth(preflight.DOWN, "no quorum (1/3 healthy); h2: does not "
                                       "answer (connection refused)", ["h2", "h3"])},
        0.5, {"h3": "no SSH on 192.0.2.13:22 within 10 s"},
    ).write(pytester.path / "preflight.json")
    pytester.makeconftest(CONFTEST)
    (pytester.path / "suites" / "flannel").mkdir(parents=True)
    (pytester.path / "suites" / "etcd").mkdir(parents=True)
    (pytester.path / "suites" / "flannel" / "test_checks.py").write_text(FLANNEL_CHECKS)
    (pytester.path / "suites" / "etcd" / "test_health.py").write_text(ETCD_HEALTH)
    # --no-must-gather: the hosts' TEST-NET addresses must never be dialled
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rfE", "--no-must-gather",
                                         f"--alluredir={pytester.path / 'results'}")


def test_blocked_checks_fail_at_once_with_one_line(broken_run: pytest.RunResult) -> None:
    out = broken_run.stdout.str()
    # etcd's own health check runs (it owns the cause); leases are blocked; h1, h2 plumbing
    # passes; h3's plumbing is blocked by SSH; the gateway error is one line per host
    broken_run.assert_outcomes(passed=3, errors=2, failed=3)
    broken_run.stdout.fnmatch_lines([
        "*ERROR at setup of test_reads_leases*",
        "blocked: needs etcd: no quorum (1/3 healthy); h2: does not answer (connection refused)",
        "*ERROR at setup of test_plumbing?h3?*",
        "blocked: needs SSH to h3: no SSH on 192.0.2.13:22 within 10 s",
    ])
    assert ("etcd unreachable at h2 (192.0.2.12:2379) during the check: timed out "
            "(ConnectionTimeoutError)") in out
    assert "Traceback" not in out and "site-packages" not in out, out


def test_blocked_checks_have_their_own_allure_category(broken_run: pytest.RunResult,
                                                       pytester: pytest.Pytester) -> None:
    results = [json.loads(p.read_text()) for p in (pytester.path / "results").glob("*-result.json")]
    blocked = next(r for r in results if r["name"] == "test_reads_leases")
    assert blocked["status"] == "broken"
    assert classify(blocked["status"], blocked["statusDetails"]["message"]) == "blocked by etcd"
    unreachable = next(r for r in results if r["name"] == "test_gateway_times_out[h1]")
    assert "etcd unreachable at h2 (192.0.2.12:2379)" in unreachable["statusDetails"]["message"]
    names = [c["name"] for c in categories_json()]
    assert names.index("blocked by etcd") < names.index("lab defect")
    assert classify("broken", "Blocked: blocked: needs SSH to h3: x") == "blocked by ssh"


# --- messages ------------------------------------------------------------------------------


def test_cut_line_never_cuts_mid_word() -> None:
    cut = cut_line("Error: context deadline exceeded " * 20, 60)
    assert len(cut) <= 60 and cut.endswith(" …")
    assert cut[:-2].split()[-1] in {"Error:", "context", "deadline", "exceeded"}


def test_a_bare_etcd_gateway_timeout_is_named() -> None:
    import etcd3gw.exceptions

    assert etcd_error(etcd3gw.exceptions.ConnectionTimeoutError("Read timed out.")) == "timed out"
    refused = etcd3gw.exceptions.ConnectionFailedError(
        "HTTPSConnectionPool(host='192.0.2.12', port=2379): Max retries exceeded "
        "(Caused by NewConnectionError(': Failed to establish a new connection: "
        "[Errno 111] Connection refused'))")
    assert etcd_error(refused) == "connection refused"


def test_a_timeout_says_what_the_last_poll_saw() -> None:
    with pytest.raises(WaitTimeout) as exc:
        wait_for(lambda: NotYet("h2: etcd inactive"), timeout=0.2, interval=0.05, what="etcd")
    assert str(exc.value).endswith("last seen: h2: etcd inactive")
    with pytest.raises(WaitTimeout) as exc:
        wait_for(lambda: [], timeout=0.1, interval=0.05, what="pods")
    assert "last seen: the condition returned []" in str(exc.value)
    assert "not yet" not in str(exc.value)


def test_must_gather_tries_an_unreachable_host_once(ssh_files: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[str] = []

    def connect(lab: Lab, host):
        attempts.append(host.name)
        raise TimeoutError("timed out")

    monkeypatch.setattr(mustgather, "connect", connect)
    monkeypatch.setattr(mustgather, "UNREACHABLE", {})
    lab = _lab(ssh_files)
    for _ in range(3):
        bundles = mustgather.gather(lab, [lab.host("h2"), lab.host("h3")],
                                    unreachable={"h3": "no SSH on 192.0.2.13:22 within 10 s"})
    assert attempts == ["h2"]
    assert "not gathered: the preflight found it unreachable" in bundles["h3"]
    assert "not tried again" in bundles["h2"]


# --- plain `pytest -n auto` groups the disruptive checks --------------------------------------


def _config(args: list[str], numprocesses: object, dist: str) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        option=types.SimpleNamespace(numprocesses=numprocesses, dist=dist),
        invocation_params=types.SimpleNamespace(args=tuple(args)),
    )


@pytest.mark.parametrize(("args", "workers", "dist", "expected"), [
    (["-n", "auto"], "auto", "no", "loadgroup"),       # the README's first example
    (["-n", "2", "--dist", "load"], 2, "load", "load"),  # a mode the user chose stays
    (["-n", "2", "--dist=no"], 2, "no", "no"),
    ([], None, "no", "no"),                              # no xdist
])
def test_xdist_runs_select_loadgroup_unless_told_otherwise(
        args: list[str], workers: object, dist: str, expected: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    config = _config(args, workers, dist)
    pytest_cmdline_main(config)  # type: ignore[arg-type]
    assert config.option.dist == expected
    # loadgroup hands work out in fixtures.claims' order (disruptive groups first), not
    # largest group first
    assert getattr(config.option, "loadscopereorder", True) is (expected != "loadgroup")


def test_loadscope_reorder_asked_for_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    config = _config(["-n", "2", "--dist", "loadgroup", "--loadscope-reorder"], 2, "loadgroup")
    config.option.loadscopereorder = True
    pytest_cmdline_main(config)  # type: ignore[arg-type]
    assert config.option.loadscopereorder is True


def test_n_auto_is_one_worker_per_cpu_plus_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from stackcheck_fixtures.lab import pytest_xdist_auto_num_workers

    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    cpus = len(os.sched_getaffinity(0))
    assert pytest_xdist_auto_num_workers(_config([], "auto", "no")) == cpus + 1  # type: ignore[arg-type]
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "5")
    assert pytest_xdist_auto_num_workers(_config([], "auto", "no")) is None  # type: ignore[arg-type]


def test_the_verdict_prints_one_line_per_layer() -> None:
    verdict = preflight.Verdict({"etcd": preflight.LayerHealth(preflight.DOWN, "no quorum")})
    assert verdict.lines() == ["etcd: down — no quorum"]


# --- the preflight in the report ------------------------------------------------------------


def test_the_preflight_is_its_own_result_and_in_the_environment() -> None:
    from stackcheck_reports import preflight_result

    verdict = preflight.Verdict({
        "ssh": preflight.LayerHealth(preflight.OK, "all 3 hosts answer"),
        "etcd": preflight.LayerHealth(preflight.DOWN, "no quorum (1/3 healthy)", ["h2", "h3"]),
    }, 0.4)
    result = preflight_result.result(verdict, "run-1", 1000.0)
    assert result["status"] == "failed"
    assert result["statusDetails"]["message"] == "etcd: down — no quorum (1/3 healthy)"
    assert [s["status"] for s in result["steps"]] == ["passed", "failed"]
    assert {"name": "epic", "value": "lab"} in result["labels"]
    assert preflight_result.environment(verdict) == {
        "preflight.ssh": "ok — all 3 hosts answer",
        "preflight.etcd": "down — no quorum (1/3 healthy)"}


def test_the_regression_summary_leads_with_a_broken_preflight() -> None:
    from stackcheck_reports.regression import compare, to_markdown
    from stackcheck_reports.store import RunRecord

    run = RunRecord("r2", 0.0, 1.0, environment={
        "preflight.ssh": "ok — all 3 hosts answer",
        "preflight.etcd": "down — no quorum (1/3 healthy)"})
    text = to_markdown(compare(run, []))
    assert ("### Preflight found the lab broken (1)\n\n"
            "- etcd: down — no quorum (1/3 healthy)") in text
    assert "ssh: ok" not in text


def test_a_refused_exec_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """v1.20's apiserver refuses the websocket upgrade when it cannot dial the kubelet: the
    Status message inside the client's exception is what a person reads, never '(no output)'."""
    from kubernetes.client import ApiException

    import stackcheck.kubernetes.api as api

    def refused(*args: object, **kwargs: object) -> None:
        raise ApiException(status=0, reason=(
            'Handshake status 500 Internal Server Error -+-+- {} -+-+- {"kind":"Status",'
            '"status":"Failure","message":"error dialing backend: dial tcp 192.0.2.12:10250: '
            'connect: connection refused","code":500}'))

    monkeypatch.setattr(api, "stream", refused)
    kube = types.SimpleNamespace(exec_core=lambda: types.SimpleNamespace(
        connect_get_namespaced_pod_exec=None))
    with pytest.raises(api.ExecError) as exc:
        api.pod_exec(kube, "ns", "p1", ["true"], 5)  # type: ignore[arg-type]
    assert str(exc.value) == ("exec in ns/p1 failed: error dialing backend: dial tcp "
                              "192.0.2.12:10250: connect: connection refused")


# --- every layer, the host's own word (issue 28) ---------------------------------------------

#: maintenance/status of a healthy 3-member cluster, recorded through etcd3gw from a local lab
#: (etcd 3.4.23, Debian etcd-server, 2026-12-03)
STATUSES = {
    "https://192.0.2.11:2379": {"header": {"cluster_id": "6519804606420736665",
                                           "member_id": "1900135691328607147"},
                                "version": "3.4.23", "leader": "1900135691328607147",
                                "raftIndex": "22", "raftTerm": "3"},
    "https://192.0.2.12:2379": {"header": {"cluster_id": "6519804606420736665",
                                           "member_id": "6701721728025115691"},
                                "version": "3.4.23", "leader": "1900135691328607147",
                                "raftIndex": "22", "raftTerm": "3"},
    "https://192.0.2.13:2379": {"header": {"cluster_id": "6519804606420736665",
                                           "member_id": "17473292867345991780"},
                                "version": "3.4.23", "leader": "1900135691328607147",
                                "raftIndex": "22", "raftTerm": "3"},
}


def test_the_preflight_sees_split_brain(ssh_files: Path) -> None:
    """h3 answers as a cluster of its own (another cluster id, itself as leader)."""
    lab = _lab(ssh_files)
    statuses = json.loads(json.dumps(STATUSES))
    h3 = statuses["https://192.0.2.13:2379"]
    h3["header"]["cluster_id"] = "1234567890123"
    h3["leader"] = h3["header"]["member_id"]
    health = etcd_preflight.etcd_health(lab, dict.fromkeys(statuses), statuses)
    assert health.status == preflight.DOWN
    assert health.summary == ("split brain: the members report 2 cluster ids: h1, h2 in "
                              "cluster 5a7affbf02a9da99; h3 in cluster 11f71fb04cb")
    assert etcd_preflight.etcd_health(lab, dict.fromkeys(STATUSES), STATUSES).summary == (
        "all 3 members healthy")


def test_members_that_disagree_on_the_leader_are_named(ssh_files: Path) -> None:
    lab = _lab(ssh_files)
    statuses = json.loads(json.dumps(STATUSES))
    statuses["https://192.0.2.13:2379"]["leader"] = "17473292867345991780"
    health = etcd_preflight.etcd_health(lab, dict.fromkeys(statuses), statuses)
    assert health.status == preflight.DEGRADED and health.down == ["h3"]
    assert health.summary == ("the members disagree on the leader: h1, h2: leader "
                              "1a5ea3580aaed3ab; h3: leader f27d9b490e864864")


def test_a_host_layer_down_on_one_host_names_it_with_its_word() -> None:
    line = ("h3: docker inactive since 2026-12-03 08:30:35 UTC — does not answer (docker "
            "version: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is "
            "the docker daemon running?)")
    health = preflight.hosts_health("runtime", ["h1", "h2", "h3"], {"h3": line},
                                    "answers on all 3 hosts")
    assert health.status == preflight.DEGRADED and health.ok
    assert health.summary == line and health.down == ["h3"]
    assert health.on("h3") == line and health.on("h1") is None
    verdict = preflight.Verdict({"runtime": health})
    assert verdict.down_on("h3") == {"runtime": line}
    again = preflight.Verdict.from_dict(verdict.to_dict())
    assert again.layers["runtime"].why == {"h3": line}
    everywhere = preflight.hosts_health("runtime", ["h1"], {"h1": "h1: x"}, "ok")
    assert everywhere.status == preflight.DOWN


def test_the_host_s_own_word_reads_systemd_and_the_local_lab() -> None:
    from stackcheck.services import log_message, parse_show

    # `systemctl show -p Id,LoadState,ActiveState,SubState,UnitFileState,StateChangeTimestamp
    # etcd` of a masked unit on a machines-lab host (systemd 252, Debian 12)
    masked = parse_show("etcd", "etcd", MASKED_SHOW)
    assert masked.word == "masked"
    assert masked.describe() == "etcd.service masked since 2026-12-03 08:33:46 UTC"
    # the local lab's unitstate.py of a stopped service, and of one the host does not run
    local = parse_show("docker", "docker", (
        "Id=docker\nLoadState=loaded\nActiveState=inactive\nSubState=dead\n"
        "StateChangeTimestamp=Thu 2026-12-03 08:30:35 UTC\n"))
    assert local.describe() == "docker inactive since 2026-12-03 08:30:35 UTC"
    assert parse_show("flannel", "flannel", "Id=flannel\nLoadState=not-found\n"
                      "ActiveState=inactive\n").word == "absent"
    # last log lines as etcd 3.4.23 (zap JSON) and dockerd 20.10 (logrus) wrote them
    assert log_message('{"level":"info","ts":"2026-12-03T08:30:42.638Z","caller":"embed/'
                       'etcd.go:375","msg":"closed etcd server","name":"h2"}') == (
        "closed etcd server")
    assert log_message('time="2026-12-03T08:30:34.641805730Z" level=info msg="[core] Channel '
                       'Connectivity change to \\"CONNECTING\\"" module=grpc') == (
        '[core] Channel Connectivity change to "CONNECTING"')
    assert log_message("E1203 08:40:01.123456   4242 kubelet.go:2183] Container runtime "
                       "network not ready") == "Container runtime network not ready"


#: recorded on a machines-lab host (systemd 252.39-1~deb12u2, Debian 12) after
#: `systemctl mask --now etcd`, 2026-12-03
MASKED_SHOW = """Id=etcd.service
LoadState=masked
ActiveState=inactive
SubState=dead
UnitFileState=masked
StateChangeTimestamp=Thu 2026-12-03 08:33:46 UTC
"""

DOCKER_CHECKS = '''
import pytest
from stackcheck_fixtures.preflight import Partial

@pytest.fixture
def pods(lab):
    return Partial(["h1", "h3"], {"h2": "needs runtime on h2: h2: docker inactive"})

def test_bridge(lab_host, host):
    pass

@pytest.mark.owns("runtime")
def test_daemon_answers(lab_host, host):
    pass

def test_matrix(pods):
    assert pods == ["h1", "h3"]
'''


def test_a_layer_down_on_one_host_blocks_that_host_only(pytester: pytest.Pytester,
                                                        ssh_files: Path) -> None:
    lab = _lab(ssh_files)
    (pytester.path / "lab.json").write_text(lab.to_json())
    runtime = preflight.hosts_health("runtime", ["h1", "h2", "h3"], {
        "h2": "h2: docker inactive since 2026-12-03 08:30:35 UTC — does not answer"}, "ok")
    preflight.Verdict({"runtime": runtime}, 0.5).write(pytester.path / "preflight.json")
    pytester.makeconftest(CONFTEST)
    (pytester.path / "suites" / "docker").mkdir(parents=True)
    (pytester.path / "suites" / "docker" / "test_checks.py").write_text(DOCKER_CHECKS)
    run = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rfE", "--no-must-gather",
                                        f"--alluredir={pytester.path / 'results'}")
    # h2's bridge check blocked; the owner of the runtime runs on h2; the all-pairs check
    # passes on h1 and h3 and reports h2 blocked
    run.assert_outcomes(passed=5, errors=1, failed=1)
    run.stdout.fnmatch_lines([
        "*ERROR at setup of test_bridge?h2?*",
        "blocked: needs runtime on h2: h2: docker inactive since 2026-12-03 08:30:35 UTC — "
        "does not answer",
        "blocked: needs runtime on h2: h2: docker inactive (the check passed on the other hosts)",
    ])
    results = [json.loads(p.read_text()) for p in (pytester.path / "results").glob("*-result.json")]
    matrix = next(r for r in results if r["name"] == "test_matrix")
    assert classify(matrix["status"], matrix["statusDetails"]["message"]) == "blocked by runtime"


def test_a_member_only_the_runner_cannot_reach_is_alive_in_quorum(ssh_files: Path) -> None:
    """Seen on a local lab with h3's client port dropped from the runner's address only."""
    lab = _lab(ssh_files)
    why = (f"{etcd_preflight.RUNNER_ONLY} (timed out), alive: etcd active and its endpoint "
           "answers on h3 itself; the other members agree on leader h1 (1a5ea3580aaed3ab)")
    health = etcd_preflight.etcd_health(lab, {"https://192.0.2.11:2379": None,
                                         "https://192.0.2.12:2379": None,
                                         "https://192.0.2.13:2379": why})
    assert health.status == preflight.DEGRADED and health.down == ["h3"]
    assert health.summary == (f"quorum kept (3/3 alive, 2 reachable from the runner); h3: {why}")


# --- pods that do not start say why ----------------------------------------------------------
# The texts are Kubernetes v1.20.2's own: pkg/kubelet/images/image_manager.go (ErrImageNeverPull),
# pkg/controller/nodelifecycle/node_lifecycle_controller.go (NodeStatusUnknown).


def _pod(name: str, node: str | None = None, waiting: tuple[str, str] | None = None,
         scheduled: bool | None = None):
    from kubernetes import client

    statuses = None
    if waiting:
        statuses = [client.V1ContainerStatus(
            name="c", image="stackcheck/busybox:latest", image_id="", ready=False,
            restart_count=0, state=client.V1ContainerState(
                waiting=client.V1ContainerStateWaiting(reason=waiting[0], message=waiting[1])))]
    conditions = None
    if scheduled is not None:
        conditions = [client.V1PodCondition(type="PodScheduled",
                                            status="True" if scheduled else "False")]
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name),
                        spec=client.V1PodSpec(containers=[], node_name=node),
                        status=client.V1PodStatus(phase="Pending", container_statuses=statuses,
                                                  conditions=conditions))


def test_a_pod_that_will_not_start_says_why_and_whether_it_is_final() -> None:
    from stackcheck.kubernetes.pods import why_pending

    never = _pod("pod-h3", "h3", ("ErrImageNeverPull", 'Container image "stackcheck/busybox:'
                                  'latest" is not present with pull policy of Never'))
    why = why_pending(never, [], {"h3": ""}, 3)
    assert why.final and why.text == ('ErrImageNeverPull: Container image "stackcheck/busybox:'
                                      'latest" is not present with pull policy of Never')
    lost = why_pending(_pod("pod-h3", "h3"), [], {
        "h3": "NotReady (NodeStatusUnknown: Kubelet stopped posting node status.)"}, 3)
    assert lost.final and lost.text == ("its node h3 is NotReady (NodeStatusUnknown: Kubelet "
                                        "stopped posting node status.)")
    unscheduled = _pod("web-0")
    assert not why_pending(unscheduled, [], {}, 3).final  # the scheduler may still decide
    # a loaded machine's scheduler may take longer than 10 s: no verdict by a stopwatch
    assert not why_pending(unscheduled, [], {}, 12).final
    assert why_pending(unscheduled, [], {}, 31).text == (
        "no scheduling decision in 31 s: no scheduler decides on it")
    assert why_pending(unscheduled, [], {}, 31).final
    assert not why_pending(_pod("web-0", scheduled=False), [], {}, 31).final


def test_the_health_check_prints_the_tls_cause_the_preflight_found() -> None:
    """Recorded: etcd3gw 2.7's error when the runner's CA did not sign the member's
    certificate (etcd 3.4.23 on a local lab, 2026-12-03); it used to read "no reason given"."""
    import etcd3gw.exceptions

    from stackcheck.etcd import error_text

    exc = etcd3gw.exceptions.ConnectionFailedError()
    exc.detail_text = (
        "HTTPSConnectionPool(host='10.221.2.13', port=2379): Max retries exceeded with url: "
        "/version (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_"
        "FAILED] certificate verify failed: unable to get local issuer certificate "
        "(_ssl.c:1006)')))")
    assert etcd_error(exc) == "TLS certificate not trusted"
    assert error_text(exc) == "does not answer (ConnectionFailedError: TLS certificate not trusted)"
