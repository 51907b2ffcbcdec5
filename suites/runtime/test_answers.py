"""The container runtime answers, and the kubelet talks to it on its own socket."""

import allure
import pytest

from stackcheck.lab import Host
from stackcheck.runtime.detect import UNKNOWN, Runtime
from stackcheck_fixtures.runtime import runs_containers
from stackcheck_reports import evidence

pytestmark = [allure.feature("daemon")]


def _attach(lab_host: Host, runtime: Runtime) -> None:
    evidence.attach_text("runtime", "\n".join([
        f"runtime: {runtime.variant}", f"socket: {runtime.socket}",
        f"asked: {runtime.probe or '-'}", f"said: {runtime.said or '-'}",
        "how it was found:", *(f"  {line}" for line in runtime.evidence)]))
    note = runtime.role_note(lab_host.roles)
    if note:
        evidence.attach_text("docker role", f"{lab_host.name}: {note}")


@pytest.mark.owns("runtime")
@allure.id("runtime-answers")
def test_runtime_answers(lab_host: Host, host, runtime_of) -> None:
    if not runs_containers(lab_host):
        pytest.skip(f"{lab_host.name} has neither the docker nor the node role")
    runtime = runtime_of(lab_host)
    _attach(lab_host, runtime)
    if runtime.kind == UNKNOWN or not runtime.answers:
        pytest.fail(f"{lab_host.name}: {runtime.summary}", pytrace=False)


@pytest.mark.role("node")
@allure.id("runtime-kubelet-uses-runtime-socket")
def test_kubelet_uses_the_runtime_socket(lab_host: Host, host, runtime_of) -> None:
    runtime = runtime_of(lab_host)
    _attach(lab_host, runtime)
    kubelet = runtime.kubelet
    if kubelet is None:
        pytest.fail(f"{lab_host.name}: expected a kubelet in the host's network namespace; none "
                    "runs, so which runtime it uses cannot be told", pytrace=False)
    if runtime.kind == "containerd" and runtime.containerd is None:
        pytest.fail(f"{lab_host.name}: the kubelet uses {kubelet.words}, but no containerd "
                    f"runs there ({runtime.summary})", pytrace=False)
    if kubelet.socket != runtime.socket:
        pytest.fail(f"{lab_host.name}: the kubelet's CRI endpoint is {kubelet.socket} "
                    f"({kubelet.source}); {runtime.kind} listens on {runtime.socket}",
                    pytrace=False)
    if not runtime.answers:
        pytest.fail(f"{lab_host.name}: the kubelet's runtime {kubelet.words} does not answer "
                    f"({runtime.probe}): {runtime.said}", pytrace=False)
