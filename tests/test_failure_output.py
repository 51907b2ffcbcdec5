"""A failed check shows its own frame and one message: no library source, no object repr, no
``+ where`` expansion, no escaped ``\\n`` (reports/failures.py, in a real pytest run).

The failures are real: a wait that times out, a service command killed by ``timeout`` (exit
124, nothing printed), a command that prints several lines and fails (run by testinfra's
``local://`` backend on this machine), an ``assert`` whose message holds a dict with a
multi-line value, testinfra's ``CommandResult`` in a message, a fixture whose teardown fails.
"""

from __future__ import annotations

import re

import pytest

from stackcheck.errors import command_failure

CONFTEST = '''
import subprocess
import pytest
from pathlib import Path
from stackcheck.faults import FaultJournal, Faults
from stackcheck.lab import Lab
from stackcheck.provisioner import Provisioner, ServiceResult

pytest_plugins = ["stackcheck_reports.plugin"]

class ThisMachine(Provisioner):
    """Runs a service's command here, for real (a start that outlives its time limit)."""
    name = "this-machine"
    def create(self, config):
        raise NotImplementedError
    def destroy(self, lab):
        pass
    def service(self, lab, host, service, action, timeout=60):
        command = "timeout 1 sh -c 'sleep 5'"
        done = subprocess.run(command, shell=True, capture_output=True, text=True)
        return ServiceResult(host.name, command, done.returncode, done.stdout, done.stderr)

@pytest.fixture
def lab(tmp_path):
    (tmp_path / "known_hosts").write_text("")
    return Lab.model_validate({"name": "fo", "provisioner": "this-machine",
                               "ssh": {"known_hosts": str(tmp_path / "known_hosts")},
                               "hosts": [{"name": "h1", "address": "127.0.0.11"}]})

@pytest.fixture
def faults(lab, tmp_path):
    injector = Faults(ThisMachine(), lab, FaultJournal(tmp_path / "faults.json"))
    yield injector
    injector.heal()
'''

CHECKS = '''
import testinfra
from stackcheck.ssh import run_checked
from stackcheck.waits import NotYet, wait_for

def test_wait_times_out():
    wait_for(lambda: NotYet("h2: inactive"), timeout=0.3, what="etcd on h2 to start")

def test_wait_sees_output():
    out = "Error from server" + chr(10) + "pod not found"
    wait_for(lambda: NotYet(f"the client got {out!r}"), timeout=0.2, what="an answer")

def test_service_does_not_start(lab, faults):
    faults.start(lab.host("h1"), "etcd")

def test_command_fails():
    run_checked(testinfra.get_host("local://"), "h1",
                "echo 'Freed objects: 166 bytes'; echo; echo 'error: Refspec x not found'; exit 1")

def test_assert_with_a_message():
    seen = {"h1": "first line" + chr(10) + "second line", "h2": "ok"}
    assert len(set(seen.values())) == 1, f"expected one answer from every member; saw {seen}"

def test_result_in_a_message():
    result = testinfra.get_host("local://").run("exit 3")
    assert result.rc == 0, f"expected exit 0; got {result}"

def test_stopped_service_teardown_fails(lab, faults):
    faults.journal.add("h1", "etcd")
'''


@pytest.fixture
def output(pytester: pytest.Pytester) -> str:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest("-p", "no:cacheprovider", "--no-history", "--no-must-gather",
                                "-rfE")
    result.assert_outcomes(failed=6, passed=1, errors=1)
    return result.stdout.str()


def test_a_failed_check_shows_its_frame_and_message_and_no_library_internals(
        output: str) -> None:
    assert not [line for line in output.splitlines() if "stackcheck/" in line], output
    assert " object at 0x" not in output
    assert "+ where" not in output and "+  where" not in output
    assert "\\n" not in output
    assert "site-packages" not in output and "_pytest" not in output
    assert "stackcheck.waits." not in output and "stackcheck.faults." not in output
    # each failure ends with the check's frame and one message
    assert ("E       WaitTimeout: timed out after 0.3s waiting for etcd on h2 to start; last "
            "seen: h2: inactive") in output
    assert re.search(r"^test_checks\.py:6: WaitTimeout$", output, re.M), output
    assert ("E       WaitTimeout: timed out after 0.2s waiting for an answer; last seen: the "
            "client got 'Error from server\nE           pod not found'") in output
    assert ("E       FaultError: could not start etcd on h1: `timeout 1 sh -c 'sleep 5'` "
            "exited 124 (its time limit ran out) and printed nothing") in output
    assert ("E       CommandFailed: h1: `echo 'Freed objects: 166 bytes'; echo; echo 'error: "
            "Refspec x not found'; exit 1` exited 1; it printed:\n"
            "E           | Freed objects: 166 bytes\nE           | \n"
            "E           | error: Refspec x not found\n") in output
    assert ("E       AssertionError: expected one answer from every member; saw {'h1': 'first "
            "line\nE           second line', 'h2': 'ok'}") in output
    assert "got CommandResult(backend=<LocalBackend>, exit_status=3" in output
    # the teardown's own frame is the conftest's fixture
    assert "ERROR at teardown of test_stopped_service_teardown_fails" in output
    assert re.search(r"^conftest.py:\d+: FaultError$", output, re.M), output


def test_a_bare_assert_keeps_pytests_explanation(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["stackcheck_reports.plugin"]\n')
    pytester.makepyfile(test_bare="def test_bare():\n    x = [1]\n    assert len(x) == 2\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--no-history")
    result.stdout.fnmatch_lines(["E       assert 1 == 2", "E        +  where 1 = len([1])"])


def test_command_failure_says_what_ran_and_what_it_printed() -> None:
    assert command_failure("systemctl start etcd", 124) == (
        "`systemctl start etcd` exited 124 (its time limit ran out) and printed nothing")
    assert command_failure("etcdctl endpoint hashkv --rev=7", 1,
                           stderr="Error: context deadline exceeded\n", host="h1") == (
        "h1: `etcdctl endpoint hashkv --rev=7` exited 1: Error: context deadline exceeded")
    assert command_failure("ostree admin upgrade", 1, stdout="Freed objects: 166 bytes\n\n"
                           "error: Refspec x not found") == (
        "`ostree admin upgrade` exited 1; it printed:\n    | Freed objects: 166 bytes\n    | \n"
        "    | error: Refspec x not found")
