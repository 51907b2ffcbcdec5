"""A ``runtime=containerd`` local lab: the conformance suites on containerd, and a stopped
containerd caught on one host.

One real 3-host lab (containerd + CNI bridge, kubelets on the remote runtime, no dockerd)
serves the module; the suites run against its inventory in a separate pytest process
(2 workers). The fault is reverted whatever the outcome.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from labs import local_lab, run_pytest

from stackcheck.lab import Lab
from stackcheck.ssh import host_connection
from stackcheck.waits import wait_for
from stackcheck_provisioners import get_provisioner

REPO = Path(__file__).resolve().parent.parent
LAB_NAME = "rtl"
SUBNET = "10.224.200.0/24"
#: what a containerd lab is checked with (no upstream e2e, no etcd/atomic disruptions)
SUITES = ("suites/lab", "suites/runtime", "suites/docker", "suites/flannel",
          "suites/kubernetes/test_preflight.py", "suites/kubernetes/test_scheduling.py",
          "suites/kubernetes/test_networking.py")

pytestmark = [
    pytest.mark.lab,
    pytest.mark.xdist_group("runtime-lab"),
    pytest.mark.skipif(os.geteuid() != 0, reason="a local lab needs root"),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    started = time.monotonic()
    with local_lab(tmp_path_factory.mktemp("rtl") / "lab", "runtime-lab",
                   name=LAB_NAME, subnet=SUBNET, runtime="containerd") as built:
        print(f"runtime=containerd lab bring-up: {time.monotonic() - started:.1f}s")
        yield built


def run_suite(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return run_pytest(lab, "-rfEs", "--tb=line", *args, timeout=900)


def failed_checks(result: subprocess.CompletedProcess[str]) -> set[str]:
    return set(re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, re.MULTILINE))


def sh(lab: Lab, host: str, command: str) -> str:
    result = host_connection(lab, lab.host(host)).run(command)
    assert result.rc == 0, f"{host}: {command}: {result.stderr}"
    return result.stdout


def test_lab_runs_containerd_with_the_images_and_no_dockerd(lab: Lab) -> None:
    env = lab.environment
    assert env["container_runtime"] == "containerd", env
    assert "containerd over CRI" in env["kubernetes"], env["kubernetes"]
    assert env["containerd"] == "available"
    for host in lab.hosts:
        images = sh(lab, host.name, "ctr -n k8s.io images ls -q")
        for image in ("docker.io/stackcheck/busybox:latest", "docker.io/stackcheck/pause:3.2",
                      "docker.io/library/busybox:1.29"):
            assert image in images.split(), f"{host.name}: {image} not in {images.split()}"
        assert sh(lab, host.name, "pgrep -x dockerd -c --ns $$ --nslist net || true").strip() \
            in ("", "0"), f"{host.name}: a dockerd runs in a runtime=containerd lab"


def test_conformance_suites_pass_on_containerd(lab: Lab) -> None:
    result = run_suite(lab, "-n", "2", "--dist", "loadgroup", "-m", "not disruptive", *SUITES)
    out = result.stdout
    assert result.returncode == 0, out[-5000:] + result.stderr[-2000:]
    # Docker's own checks skip, naming the runtime and the host's word (no docker service,
    # although the docker binary is on the shared filesystem); the runtime's checks passed
    assert re.search(r"SKIPPED .*runs containerd 1\.6[^,]*, not Docker \(docker absent\)",
                     out), out[-3000:]
    assert "runtime-" not in " ".join(failed_checks(result))
    assert re.search(r"\d+ passed", out)


def test_stopped_containerd_is_caught_on_its_host(lab: Lab) -> None:
    provisioner = get_provisioner("local")
    h2 = lab.host("h2")
    stopped = provisioner.service(lab, h2, "containerd", "stop")
    assert stopped.exit_status == 0, stopped.stderr
    try:
        result = run_suite(lab, "suites/runtime/test_answers.py")
    finally:
        started = provisioner.service(lab, h2, "containerd", "start")
        assert started.exit_status == 0, started.stderr
    failed = failed_checks(result)
    assert failed and all(name.endswith("[h2]") for name in failed), result.stdout[-3000:]
    said = [line for line in result.stdout.splitlines() if "does not answer" in line]
    assert any("h2: containerd does not answer on /run/containerd/containerd.sock" in line
               for line in said), result.stdout[-3000:]
    assert all("h1" not in line and "h3" not in line for line in said), said
    # restored: the runtime answers and the Node is Ready again (the kubelet reconnects with
    # a backoff of up to ~30 s and recreates its pods itself)
    wait_for(lambda: host_connection(lab, h2).run(
        "ctr --connect-timeout 2s version").rc == 0 or None, timeout=30, interval=0.5,
        what="containerd on h2 answering again")
    from kubernetes import client, config

    assert lab.kubernetes is not None
    core = client.CoreV1Api(config.new_client_from_config(str(lab.kubernetes.kubeconfig)))

    def ready() -> str | None:
        conditions = core.read_node("h2").status.conditions or []
        return next((c.status for c in conditions if c.type == "Ready" and c.status == "True"),
                    None)

    wait_for(ready, timeout=120, interval=2, what="Node h2 Ready again")
