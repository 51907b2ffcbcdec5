"""A machines lab (3 systemd-nspawn machines booted from ostree) passes the suites and each
suite catches a fault injected the way an operator would break a machine (systemctl, ostree).

The suites reach the lab only through its inventory (``existing`` path: systemctl, SSH);
the atomic suite really reboots the machines (``--allow-reboot``). CI cost: ~3 min with the
machine tree cached (first run: + ~70 s to build it with mmdebstrap; needs network for
Debian's packages).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioners import ProvisionConfig, get_provisioner
from provisioners.local import etcd as local_etcd
from provisioners.local import network
from provisioners.local.cgroups import CGROUP_ROOT, lab_group
from provisioners.machines.provisioner import layout_for
from stackcheck.lab import Lab
from stackcheck.ssh import close_all, host_connection
from stackcheck.waits import wait_for

REPO = Path(__file__).resolve().parent.parent
NAME = "mch"
OPTIONS = {"name": NAME, "subnet": "10.213.16.0/24"}

pytestmark = [
    pytest.mark.lab,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="a machines lab needs root"),
    pytest.mark.skipif(shutil.which("systemd-nspawn") is None or shutil.which("mmdebstrap") is None,
                       reason="needs Debian's systemd-container and mmdebstrap"),
]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> ProvisionConfig:
    return ProvisionConfig(run_id="machines", state_dir=tmp_path_factory.mktemp("mch") / "lab",
                           hosts=3, options=dict(OPTIONS))


@pytest.fixture(scope="module")
def lab(config: ProvisionConfig) -> Iterator[Lab]:
    provisioner = get_provisioner("machines")
    try:
        yield provisioner.create(config)
    finally:
        close_all()
        provisioner.abort(config)


def run_suite(lab: Lab, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run suites against the lab's inventory in a fresh pytest process."""
    assert lab.state_dir is not None
    inventory = Path(lab.state_dir) / "inventory.yaml"
    return subprocess.run(
        [sys.executable, "-m", "pytest", f"--inventory={inventory}", "-p", "no:cacheprovider",
         "-q", "-rfEs", "--tb=line", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
    )


def sh(lab: Lab, host: str, command: str) -> str:
    result = host_connection(lab, lab.host(host)).run(command)
    assert result.rc == 0, f"{host}: {command}: {result.stderr}"
    return result.stdout


def test_machines_run_systemd_and_the_distribution_units(lab: Lab) -> None:
    assert lab.provisioner == "machines"
    assert "kubelet" not in lab.service_control.units
    for host in lab.hosts:
        assert sh(lab, host.name, "cat /proc/1/comm").strip() == "systemd"
        units = ("ssh", "etcd", "docker", "flanneld")
        states = sh(lab, host.name, f"systemctl is-active {' '.join(units)}").split()
        assert states == ["active"] * 4, f"{host.name}: {dict(zip(units, states, strict=True))}"
        assert "*" in sh(lab, host.name, "ostree admin status")


def test_suites_pass_with_real_reboots(lab: Lab) -> None:
    result = run_suite(lab, "-n", "2", "--dist", "loadgroup", "--allow-reboot", "suites/etcd",
                       "suites/docker", "suites/flannel", "suites/atomic", timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "skipped" not in result.stdout.splitlines()[-1], result.stdout[-2000:]
    # the supervisors booted each machine again (upgrade reboot + rollback reboot)
    assert lab.state_dir is not None
    for host in lab.hosts:
        log = (Path(lab.state_dir) / "hosts" / host.name / "console.log").read_text()
        assert log.count("rebooting into the default deployment") >= 2, log[-2000:]


def test_etcd_suite_catches_two_stopped_members(lab: Lab) -> None:
    try:
        for h in ("h2", "h3"):
            sh(lab, h, "systemctl stop etcd")
        result = run_suite(lab, "suites/etcd/test_health.py")
        assert result.returncode != 0, result.stdout[-2000:]
        assert "h2" in result.stdout and "h3" in result.stdout, result.stdout[-2000:]
    finally:
        for h in ("h2", "h3"):
            sh(lab, h, "systemctl start etcd")
        layout = layout_for(ProvisionConfig("x", Path(lab.state_dir or "."), hosts=3,
                                            options=dict(OPTIONS)))
        wait_for(lambda: local_etcd.healthy(layout), timeout=60, what="etcd healthy again")


def test_docker_suite_catches_a_stopped_daemon(lab: Lab) -> None:
    try:
        sh(lab, "h2", "systemctl stop docker.socket docker")
        result = run_suite(lab, "suites/docker/test_daemon.py")
        assert result.returncode != 0, result.stdout[-2000:]
        assert "h2" in result.stdout, result.stdout[-2000:]
    finally:
        sh(lab, "h2", "systemctl start docker")


def test_flannel_suite_catches_a_stopped_flanneld(lab: Lab) -> None:
    try:
        sh(lab, "h3", "systemctl stop flanneld")
        result = run_suite(lab, "suites/flannel/test_host_plumbing.py")
        assert result.returncode != 0, result.stdout[-2000:]
        assert "h3" in result.stdout, result.stdout[-2000:]
    finally:
        sh(lab, "h3", "systemctl start flanneld")


def test_atomic_suite_catches_a_wrong_origin(lab: Lab) -> None:
    origin = ("/ostree/deploy/debian/deploy/"
              "$(ostree admin status | awk '/^\\* / {print $3}').origin")
    refspec = next(line for line in sh(lab, "h1", f"cat {origin}").splitlines()
                   if line.startswith("refspec="))
    try:
        sh(lab, "h1", f"sed -i 's|^refspec=.*|refspec=lab:debian/12/x86_64/testing|' {origin}")
        result = run_suite(lab, "suites/atomic/test_deployments.py")
        assert result.returncode != 0, result.stdout[-2000:]
        assert "h1" in result.stdout and "testing" in result.stdout, result.stdout[-2000:]
    finally:
        sh(lab, "h1", f"sed -i 's|^refspec=.*|{refspec}|' {origin}")


def test_lab_down_leaves_nothing(lab: Lab, config: ProvisionConfig) -> None:
    get_provisioner("machines").abort(config)
    layout = layout_for(config)
    assert not {h.netns for h in layout.hosts} & network.netns_list()
    assert layout.root_link not in network.root_links()
    assert not list(CGROUP_ROOT.glob(f"*/{lab_group(NAME)}"))
    assert not Path(config.state_dir).exists()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert f"--netns sc-{NAME}-h" not in ps and f"sc-{NAME}-h1" not in ps
