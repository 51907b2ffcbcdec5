"""fixtures/timing.py: every wait of a run is recorded, merged across xdist workers, reported."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from stackcheck.etcd.cluster import settles
from stackcheck.waits import RECORDS, WaitTimeout, wait_for

CONFTEST = 'pytest_plugins = ["stackcheck_fixtures.lab", "stackcheck_fixtures.timing"]\n'

SUITE = textwrap.dedent("""
    import time
    import pytest
    from stackcheck.waits import WaitTimeout, wait_for

    def after(seconds):
        ready = time.monotonic() + seconds
        return lambda: time.monotonic() >= ready

    @pytest.mark.parametrize("seconds", [0.05, 0.3, 0.6])
    def test_waits(lab, seconds):
        wait_for(after(seconds), timeout=5, interval=0.05, what=f"ready after {seconds}s")

    def test_times_out(lab):
        with pytest.raises(WaitTimeout):
            wait_for(lambda: False, timeout=0.2, interval=0.05, what="never ready")
""")


@pytest.fixture
def suite(pytester: pytest.Pytester, ssh_files: Path) -> Path:
    """A suite with four waits, against an adopted lab (only its preflight probes loopback)."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_waits=SUITE)
    inventory = ssh_files / "lab.yaml"
    inventory.write_text(textwrap.dedent("""
        name: timing
        ssh: {identity_file: id_ed25519, known_hosts: known_hosts}
        hosts:
          - {name: h1, address: 127.0.0.1, roles: [etcd]}
    """))
    return inventory


def _run_dir(pytester: pytest.Pytester) -> Path:
    (run_dir,) = (pytester.path / ".stackcheck" / "runs").iterdir()
    return run_dir


@pytest.mark.parametrize("workers", ["0", "2"])
def test_slowest_waits_are_merged_written_and_printed(
    pytester: pytest.Pytester, suite: Path, workers: str
) -> None:
    alluredir = pytester.path / "allure"
    result = pytester.runpytest_subprocess(
        "-n", workers, f"--inventory={suite}", f"--alluredir={alluredir}",
        "-p", "no:testinfra", "-p", "no:cacheprovider",
    )
    result.assert_outcomes(passed=4)
    waits = json.loads((_run_dir(pytester) / "waits.json").read_text())
    assert [w["what"] for w in waits] == [
        "ready after 0.6s", "ready after 0.3s", "never ready", "ready after 0.05s"]
    assert [w["ok"] for w in waits] == [True, True, False, True]
    assert waits[0]["seconds"] >= 0.6 and waits[0]["polls"] > 5
    assert all(w["test"].startswith("test_waits.py::test_") for w in waits)
    expected_workers = {"main"} if workers == "0" else {"gw0", "gw1"}
    assert {w["worker"] for w in waits} <= expected_workers
    assert json.loads((alluredir / "waits.json").read_text()) == waits
    result.stdout.fnmatch_lines([
        "*stackcheck: 4 slowest of 4 waits*",
        "*ok*polls every 0.05s (timeout 5s)  ready after 0.6s  ?test_waits?0.6??",
        "*TIMED OUT*never ready*",
    ])


def test_a_run_without_waits_reports_none(pytester: pytest.Pytester, suite: Path) -> None:
    result = pytester.runpytest_subprocess(
        f"--inventory={suite}", "-p", "no:testinfra", "-k", "times_out")
    result.assert_outcomes(passed=1, deselected=3)
    assert "slowest" in result.stdout.str()
    result = pytester.runpytest_subprocess(
        f"--inventory={suite}", "-p", "no:testinfra", "-k", "nothing")
    assert "slowest" not in result.stdout.str()


def test_an_error_ends_a_wait_at_once_unless_retried() -> None:
    def broken() -> bool:
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):
        wait_for(broken, timeout=30, what="the broken thing", retry_errors=False)
    assert RECORDS[-1].what == "the broken thing" and not RECORDS[-1].ok
    with pytest.raises(WaitTimeout, match="ConnectionError"):
        wait_for(broken, timeout=0.3, interval=0.1)
    with pytest.raises(ConnectionError):  # a check never mistakes an error for "settled"
        settles(broken, 30)
    assert settles(lambda: True, 1) and not settles(lambda: False, 0.3)
