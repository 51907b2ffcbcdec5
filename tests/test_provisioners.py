"""Provisioner discovery, and the lab provisioned once / torn down once under xdist."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import stackcheck_provisioners as provisioners
from stackcheck_provisioners import ProvisionerError, get_provisioner
from stackcheck_provisioners.existing import ExistingProvisioner

COUNTING = '''
"""A provisioner registered only in the harness tests: it logs every create/destroy."""
import os
from pathlib import Path

from stackcheck_provisioners.base import Provisioner
from stackcheck.lab import Host, Lab, SSHAccess


class CountingProvisioner(Provisioner):
    name = "counting"

    def _log(self, word):
        with open(os.environ["COUNTING_LOG"], "a") as log:
            log.write(f"{word} {os.getpid()}\\n")

    def create(self, config):
        self._log("create")
        folder = Path(os.environ["COUNTING_LOG"]).parent
        (folder / "known_hosts").touch()
        return Lab(name="counted", provisioner="counting", run_id=config.run_id, owned=True,
                   ssh=SSHAccess(known_hosts=folder / "known_hosts"),
                   hosts=[Host(name="h1", address="127.0.0.1", roles=["etcd"])])

    def destroy(self, lab):
        self._log("destroy")

    def abort(self, config):
        self._log("abort")
'''


@pytest.fixture
def counting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Register the counting provisioner through a real entry point (a dist-info on sys.path)."""
    site = tmp_path / "site"
    dist = site / "counting_provisioner-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: counting-provisioner\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[stackcheck.provisioners]\ncounting = counting_provisioner:CountingProvisioner\n"
    )
    (site / "counting_provisioner.py").write_text(COUNTING)
    log = tmp_path / "log" / "counting.log"
    log.parent.mkdir()
    repo = Path(__file__).resolve().parent.parent
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(repo)]))
    monkeypatch.setenv("COUNTING_LOG", str(log))
    monkeypatch.syspath_prepend(str(site))
    return log


def test_builtin_provisioners_are_registered() -> None:
    assert {"existing", "local"} <= set(provisioners.available())
    assert isinstance(get_provisioner("existing"), ExistingProvisioner)


def test_unknown_provisioner_names_the_registered_ones() -> None:
    expected = r"unknown provisioner 'nope'; registered: .*existing"
    with pytest.raises(ProvisionerError, match=expected):
        get_provisioner("nope")


def test_third_party_provisioner_is_discovered(counting: Path) -> None:
    assert "counting" in provisioners.available()
    assert get_provisioner("counting").name == "counting"


SUITE = """
import os, time
import pytest

@pytest.mark.parametrize("n", range(6))
def test_sees_the_lab(lab, n):
    assert lab.name == "counted"
    with open(os.environ["COUNTING_LOG"] + ".seen", "a") as f:
        f.write(f"{lab.run_id} {os.environ.get('PYTEST_XDIST_WORKER', 'main')}\\n")
    time.sleep(0.2)

def test_fails(lab):
    assert False, "a failing check must not skip teardown"
"""

CONFTEST = ('pytest_plugins = ["stackcheck_fixtures.lab", "stackcheck_fixtures.claims", '
            '"stackcheck_fixtures.hosts", "stackcheck_fixtures.etcd"]\n')


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_lab_is_created_once_and_destroyed_once_under_xdist(
    pytester: pytest.Pytester, counting: Path
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("-n", "2", "--provisioner", "counting",
                                           "-p", "no:testinfra", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6, failed=1)
    log = counting.read_text().splitlines()
    assert [line.split()[0] for line in log] == ["create", "destroy"]
    assert log[0].split()[1] == log[1].split()[1], "create and destroy in one process"
    seen = (Path(str(counting) + ".seen")).read_text().splitlines()
    assert len({line.split()[0] for line in seen}) == 1, "every worker saw the same lab"
    assert {line.split()[1] for line in seen} == {"gw0", "gw1"}


def test_keep_lab_leaves_it_running(pytester: pytest.Pytester, counting: Path) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite="def test_ok(lab):\n    assert lab\n")
    result = pytester.runpytest_subprocess("--provisioner", "counting", "--keep-lab",
                                           "-p", "no:testinfra")
    result.assert_outcomes(passed=1)
    assert [line for line in counting.read_text().splitlines() if "destroy" in line] == []
    result.stdout.fnmatch_lines(["*lab 'counted' kept running*"])


def test_collect_only_provisions_nothing(pytester: pytest.Pytester, counting: Path) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite="def test_ok(lab):\n    assert lab\n")
    pytester.runpytest_subprocess("--provisioner", "counting", "--collect-only",
                                  "-p", "no:testinfra")
    assert lines(counting) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_still_tears_down_once(
    pytester: pytest.Pytester, counting: Path, sig: signal.Signals
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=textwrap.dedent("""
        import time
        def test_slow(lab):
            time.sleep(60)
    """))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-n", "2", "--provisioner", "counting",
         "-p", "no:testinfra", "-p", "no:cacheprovider"],
        cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while "create" not in counting.read_text() if counting.exists() else True:
        assert time.monotonic() < deadline, "the lab was never created"
        time.sleep(0.1)
    time.sleep(2)  # let the workers start the slow test
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert [line.split()[0] for line in counting.read_text().splitlines()] == [
        "create", "destroy"]


def test_disruptive_check_runs_alone(pytester: pytest.Pytester, counting: Path) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=textwrap.dedent("""
        import os, time
        import pytest

        def record(name):
            start = time.monotonic()
            time.sleep(0.3)
            with open(os.environ["COUNTING_LOG"] + ".spans", "a") as f:
                f.write(f"{name} {start} {time.monotonic()}\\n")

        @pytest.mark.parametrize("n", range(8))
        def test_ordinary(lab, n):
            record(f"ordinary{n}")

        @pytest.mark.disruptive
        @pytest.mark.parametrize("n", range(2))
        def test_disruptive(lab, n):
            record(f"disruptive{n}")
    """))
    result = pytester.runpytest_subprocess("-n", "2", "--provisioner", "counting",
                                           "-p", "no:testinfra")
    result.assert_outcomes(passed=10)
    spans = [line.split() for line in Path(str(counting) + ".spans").read_text().splitlines()]
    for name, start, end in spans:
        if not name.startswith("disruptive"):
            continue
        for other, o_start, o_end in spans:
            overlaps = float(o_start) < float(end) and float(start) < float(o_end)
            assert other == name or not overlaps, f"{name} overlapped {other}"


def test_provisioning_error_is_one_clear_line(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite="def test_ok(lab):\n    assert lab\n")
    missing = pytester.path / "missing.yaml"
    result = pytester.runpytest_subprocess(f"--inventory={missing}", "-p", "no:testinfra")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [f"*stackcheck: cannot provision the lab: {missing}: cannot read inventory*"]
    )


def test_unknown_or_bad_options_are_told_at_once_with_the_known_keys() -> None:
    from stackcheck_provisioners.local import LocalProvisioner

    with pytest.raises(ProvisionerError) as info:
        LocalProvisioner.parse_options({"kubernets": "false", "docker": "maybe"})
    lines = str(info.value).splitlines()
    assert lines == [
        "local: option docker='maybe': expected true or false (yes/no, on/off, 1/0)",
        "local: unknown option 'kubernets'; known: keep_on_failure, name, subnet, docker, "
        "kubernetes, k8s_bin_dir, flannel, runtime",
    ], lines
    parsed = LocalProvisioner.parse_options({"kubernetes": "off", "subnet": "10.9.0.0/24"})
    assert parsed.kubernetes is False and parsed.docker is True


def test_a_typo_in_a_lab_option_stops_pytest_before_anything_is_built(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite="def test_ok(lab):\n    assert lab\n")
    result = pytester.runpytest_subprocess("--provisioner=local", "--lab-option=kubernets=false",
                                           "-p", "no:testinfra")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*cannot provision the lab: local: unknown option 'kubernets'*"])


def test_lab_up_help_options_lists_keys_and_defaults() -> None:
    from click.testing import CliRunner

    from stackcheck_cli.main import main

    done = CliRunner().invoke(main, ["lab", "up", "--provisioner", "local", "--help-options"])
    assert done.exit_code == 0, done.output
    assert "--option keys of the 'local' provisioner:" in done.output
    assert "kubernetes" in done.output and "(default: True)" in done.output
    bad = CliRunner().invoke(main, ["lab", "up", "--option", "kubernets=false"])
    assert bad.exit_code == 2
    assert "unknown option 'kubernets'" in bad.output


ORDERED = """
import os, time
import pytest

def log(lab, name):
    with open(os.environ["COUNTING_LOG"] + ".order", "a") as f:
        f.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')} {name}\\n")

@pytest.fixture
def pods():
    return []

@pytest.mark.parametrize("n", range(4))
def test_ordinary(lab, n):
    log(lab, f"ordinary{n}")

@pytest.mark.parametrize("n", range(3))
def test_uses_pods(lab, pods, n):
    log(lab, f"pods{n}")

@pytest.mark.disruptive
def test_disruptive(lab):
    log(lab, "disruptive")
    time.sleep(1)
"""


def test_xdist_hands_out_the_disruptive_group_first_and_pod_checks_as_one_group(
    pytester: pytest.Pytester, counting: Path
) -> None:
    """Issue 27: the disruptive checks (the run's longest chain) start at once, whatever
    their place in the collection; the checks that use the data-path pods run on one worker
    (one set of pods per run), handed out before the ordinary checks."""
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    disruptive: changes the lab\n")
    pytester.makepyfile(test_suite=ORDERED)
    result = pytester.runpytest_subprocess("-n", "2", "--provisioner", "counting",
                                           "-p", "no:testinfra", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    ran = [line.split() for line in Path(str(counting) + ".order").read_text().splitlines()]
    first = {}
    for worker, name in ran:
        first.setdefault(worker, name)
    assert sorted(first.values()) == ["disruptive", "pods0"], ran
    assert len({worker for worker, name in ran if name.startswith("pods")}) == 1, ran
