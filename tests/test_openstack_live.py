"""The openstack provisioner against a real OpenStack (Zed from Debian, nova's fake virt driver).

Not part of the default selftest (marker ``openstack_live``); run them with
``./run.sh openstack-live``. They skip, naming the reason, when the control plane cannot be
brought up here. Every address the SSH wait may try is checked to route into the
control plane's own namespace first.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from stackcheck_provisioners.base import ProvisionConfig, ProvisionerError
from stackcheck_provisioners.openstack.build import Waits
from stackcheck_provisioners.openstack.cloud import run_metadata, run_tags
from stackcheck_provisioners.openstack.provisioner import OpenStackProvisioner
from stackcheck_provisioners.openstack.sshkeys import tcp_probe
from stackcheck_provisioners.openstack.state import RunState

pytestmark = pytest.mark.openstack_live

openstack = pytest.importorskip("openstack", reason="needs the 'openstack' extra")
live = pytest.importorskip("stackcheck_provisioners.openstack.live.controlplane")
from stackcheck_provisioners.openstack.live import catalog  # noqa: E402
from stackcheck_provisioners.openstack.live import configs as c  # noqa: E402

CLOUD = "stackcheck-live"


@pytest.fixture(scope="module")
def conn() -> Iterator[Any]:
    """The lab project of a running control plane (brought up here, torn down after)."""
    if os.environ.get("STACKCHECK_OS_LIVE") != "1":
        pytest.skip("the live OpenStack tests run from './run.sh openstack-live' "
                    "(STACKCHECK_OS_LIVE=1): they start a control plane as root")
    plane = live.ControlPlane()  # run.sh holds /tmp/stackcheck-openstack-live.lock
    try:
        timings = plane.up()
    except live.NotAvailable as exc:
        pytest.skip(f"no live OpenStack control plane: {exc}")
    except (RuntimeError, TimeoutError, openstack.exceptions.SDKException) as exc:
        plane.down()
        pytest.skip(f"the live OpenStack control plane did not come up: {exc}")
    print(f"control plane up: {timings}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OS_CLIENT_CONFIG_FILE", str(plane.lay.clouds_yaml))
        try:
            yield openstack.connect(cloud=CLOUD)
        finally:
            if not os.environ.get("STACKCHECK_OS_KEEP"):
                plane.down()


def contained_probe(address: str, port: int, timeout: float) -> bool:
    """tcp_probe, but only to loopback or to an address routed into the cloud's namespace."""
    if not ipaddress.ip_address(address).is_loopback:
        route = subprocess.run(["ip", "route", "get", address], capture_output=True,
                               text=True).stdout
        if f" dev {c.HOST_VETH} " not in f" {route} ":
            raise AssertionError(f"the SSH wait would send to {address}, which is not routed "
                                 f"into {c.NETNS}: {route.strip()}")
    return tcp_probe(address, port, timeout)


def write_spec(path: Path, nodes: int = 1) -> Path:
    spec = {
        "cloud": CLOUD, "image": catalog.IMAGE, "flavor": catalog.FLAVOR, "ssh_user": "centos",
        "floating_ips": True, "admin_cidr": f"{c.HOST_VETH_IP}/32",
        "network": {"cidr": c.TENANT_CIDR, "external": catalog.EXTERNAL},
        "hosts": [{"name": "master", "roles": ["etcd", "master", "flannel", "docker"]},
                  {"name": "node", "count": nodes, "roles": ["etcd", "node", "docker"]}],
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def run_resources(conn: Any, run_id: str) -> list[tuple[str, str]]:
    """Everything of one run in the project, found by its tags, metadata and names."""
    tag = run_tags(run_id)[1]
    net = conn.network
    found = [("server", s.name) for s in conn.compute.servers()
             if (s.metadata or {}).get("stackcheck-run") == run_id]
    for kind, listing in (("network", net.networks), ("subnet", net.subnets),
                          ("router", net.routers), ("security_group", net.security_groups)):
        found += [(kind, r.name) for r in listing(tags=tag)]
    found += [("floating_ip", f.floating_ip_address) for f in net.ips(tags=tag)]
    found += [("keypair", k.name) for k in conn.compute.keypairs()
              if k.name.startswith(f"sc-{run_id}-")]
    return sorted(found)


def new_run() -> str:
    return f"live-{uuid.uuid4().hex[:8]}"


def stackcheck(*args: str) -> Any:
    from stackcheck_cli.main import main
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_lab_up_builds_the_documented_lab_and_down_deletes_what_was_recorded(
        conn: Any, tmp_path: Path) -> None:
    run = new_run()
    config = ProvisionConfig(run_id=run, state_dir=tmp_path / "lab", options={
        "spec": str(write_spec(tmp_path / "spec.yaml")), "ssh_timeout": "5",
        "keep_on_failure": "true"})
    provisioner = OpenStackProvisioner(probe=contained_probe, waits=Waits(interval=1))

    try:
        with pytest.raises(ProvisionerError) as failed:
            provisioner.create(config)
        check_built_then_down(conn, run, config, str(failed.value))
    finally:
        provisioner.abort(config)  # whatever a failed check left behind


def check_built_then_down(conn: Any, run: str, config: ProvisionConfig, message: str) -> None:
    assert re.match(r"openstack: no SSH on 10\.214\.21\.\d+ \(master\), 10\.214\.21\.\d+ "
                    r"\(node\) within 5 s ", message), message
    assert "\n" not in message

    state = RunState.load(config.state_dir)
    assert state is not None
    assert Counter(r.kind for r in state.resources) == {
        "keypair": 1, "network": 1, "subnet": 1, "router": 1, "router_interface": 1,
        "security_group": 1, "server": 2, "floating_ip": 2}
    tenant = ipaddress.ip_network(c.TENANT_CIDR)
    for index, res in enumerate(r for r in state.resources if r.kind == "server"):
        server = conn.compute.get_server(res.id)
        assert (server.name, server.status) == (f"sc-{run}-{res.extra['host']}", "ACTIVE")
        assert server.metadata == run_metadata(run)
        (port,) = conn.network.ports(device_id=server.id)
        assert port.fixed_ips[0]["ip_address"] == str(tenant[10 + index])
        (fip,) = conn.network.ips(port_id=port.id)
        assert fip.tags == run_tags(run)
    for res in state.resources:
        if res.kind in ("network", "subnet", "router", "security_group"):
            getter = getattr(conn.network, f"get_{res.kind}")
            assert getter(res.id).tags == run_tags(run), res
    recorded = sorted((r.kind, r.name) for r in state.resources
                      if r.kind not in ("router_interface",))
    assert run_resources(conn, run) == recorded

    result = stackcheck("lab", "down", "--lab-dir", str(config.state_dir))
    assert result.exit_code == 0, result.output
    assert run_resources(conn, run) == []
    assert conn.network.find_network(catalog.EXTERNAL) is not None


def test_cleanup_removes_what_a_killed_run_leaked(conn: Any, tmp_path: Path) -> None:
    lab_dir, state_file = tmp_path / "lab", tmp_path / "lab" / "openstack-state.json"
    cmd = [str(Path(sys.executable).parent / "stackcheck"), "lab", "up", "--provisioner",
           "openstack", "--lab-dir", str(lab_dir), "--hosts", "2",
           "--option", f"spec={write_spec(tmp_path / 'spec.yaml')}",
           "--option", "ssh_timeout=5"]
    up = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    deadline, state = time.monotonic() + 120, None
    try:
        while time.monotonic() < deadline and up.poll() is None:
            state = RunState.load(lab_dir) if state_file.exists() else None
            if state is not None and any(r.kind == "server" for r in state.resources):
                break
            time.sleep(0.2)
    finally:
        os.killpg(up.pid, signal.SIGKILL)  # mid-creation: no rollback runs
        up.wait()
    assert state is not None, f"lab up recorded no server within 120 s (exit {up.returncode})"
    leaked = run_resources(conn, state.run_id)
    assert ("keypair", f"sc-{state.run_id}-key") in leaked

    result = stackcheck("lab", "cleanup", "--cloud", CLOUD, "--older-than", "0m")
    assert result.exit_code == 0, result.output
    assert run_resources(conn, state.run_id) == []


def test_quota_preflight_refuses_a_lab_larger_than_the_quota_before_creating(
        conn: Any, tmp_path: Path) -> None:
    limits = conn.compute.get_limits().absolute
    hosts = limits.instances - limits.instances_used + 1
    run = new_run()
    config = ProvisionConfig(run_id=run, state_dir=tmp_path / "lab", options={
        "spec": str(write_spec(tmp_path / "spec.yaml", nodes=hosts - 1))})

    with pytest.raises(ProvisionerError) as refused:
        OpenStackProvisioner(probe=contained_probe).create(config)
    assert str(refused.value) == (f"quota: need {hosts} instances, {hosts - 1} left in "
                                  "project lab")
    assert run_resources(conn, run) == []
    assert RunState.load(config.state_dir) is None
