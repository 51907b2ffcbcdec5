"""The local provisioner builds a real lab on this machine and removes every trace of it.

Lab tests need root; they build their own lab (name and subnet distinct from the
default lab) under a temporary state dir and tear it down at the end.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stackcheck.lab import Lab, load_inventory
from stackcheck_provisioners.base import ProvisionConfig, ProvisionerError
from stackcheck_provisioners.local import LocalProvisioner, destroy_state_dir
from stackcheck_provisioners.local.provisioner import layout_for

REPO = Path(__file__).resolve().parent.parent
LAB_NAME = "sctest"
SUBNET = "10.213.77.0/24"
KILL_NAME = "sckill"
KILL_SUBNET = "10.213.78.0/24"

pytestmark = pytest.mark.xdist_group("local-lab")  # one lab per module, never split

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="the local lab needs root (network namespaces, mounts, cgroups)"
)


# --- what exists on the machine, to compare before/after -----------------------------


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def _mounts() -> set[tuple[str, str]]:
    out = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        out.add((left.split(" ")[4], right.split(" ")[0]))
    return out


def _lab_processes(name: str) -> set[int]:
    """PIDs (not zombies) whose environment marks them as processes of lab ``name``."""
    found = set()
    marker = f"STACKCHECK_LAB={name}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.add(int(entry.name))
        except OSError:
            continue
    return found


def snapshot(name: str) -> dict[str, object]:
    return {"netns": _netns(), "links": _links(), "mounts": _mounts(),
            "procs": _lab_processes(name)}


def assert_nothing_left(before: dict[str, object], name: str, state_dir: Path) -> None:
    """Nothing of lab ``name`` is left; things other labs may have made meanwhile are ignored."""
    deadline = time.monotonic() + 5
    while _lab_processes(name) and time.monotonic() < deadline:
        time.sleep(0.1)
    after = snapshot(name)
    new_netns = after["netns"] - before["netns"]
    assert not {n for n in new_netns if n.startswith(f"sc-{name}-")}, "namespaces left"
    assert f"sc-{name}" not in after["links"], "the root-side veth is left"
    assert after["links"] - before["links"] <= {n for n in after["links"] if n.startswith("sc-")}
    new_mounts = after["mounts"] - before["mounts"]
    ours = {m for m in new_mounts if name in m[0] or str(state_dir) in m[0]}
    assert not ours, f"mounts left: {ours}"
    if ("/run/netns", "ext4") in new_mounts or any(m[0] == "/run/netns" for m in new_mounts):
        assert after["netns"], "/run/netns left mounted with no namespace in it"
    assert not after["procs"], f"lab processes left: {after['procs']}"
    assert not list(Path("/sys/fs/cgroup").glob(f"*/stackcheck-{name}"))
    assert not (state_dir / "state.json").exists()
    assert not (state_dir / "hosts").exists()


# --- layout rules (no root needed) ----------------------------------------------------


def test_interface_names_fit_and_subnet_checked(tmp_path: Path) -> None:
    layout = layout_for(ProvisionConfig("r1", tmp_path, hosts=9,
                                        options={"name": "a-rather-long-name"}))
    assert len(layout.root_link) <= 15
    assert [h.address for h in layout.hosts][:2] == ["10.213.0.11", "10.213.0.12"]
    assert [h.name for h in layout.etcd_hosts] == ["h1", "h2", "h3"]
    assert len(layout_for(ProvisionConfig("r1", tmp_path, hosts=2)).etcd_hosts) == 1
    with pytest.raises(ProvisionerError, match=r"option subnet='8\.8\.8\.0/24': must be a private"):
        layout_for(ProvisionConfig("r1", tmp_path, options={"subnet": "8.8.8.0/24"}))
    with pytest.raises(ProvisionerError, match="option name='Bad Name': use 1-20 of a-z"):
        layout_for(ProvisionConfig("r1", tmp_path, options={"name": "Bad Name"}))
    with pytest.raises(ProvisionerError, match="201 hosts do not fit the lab"):
        layout_for(ProvisionConfig("r1", tmp_path, hosts=201))


# --- a real lab ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    if os.geteuid() != 0:
        pytest.skip("the local lab needs root (network namespaces, mounts, cgroups)")
    before = snapshot(LAB_NAME)
    state_dir = tmp_path_factory.mktemp("local") / "lab"
    prov = LocalProvisioner()
    config = ProvisionConfig(run_id="test-local-lab", state_dir=state_dir, hosts=3,
                             options={"name": LAB_NAME, "subnet": SUBNET, "kubernetes": "false"})
    t0 = time.monotonic()
    lab = prov.create(config)
    ctx = {"prov": prov, "lab": lab, "config": config, "before": before,
           "state_dir": state_dir, "create_seconds": time.monotonic() - t0}
    yield ctx
    if (state_dir / "state.json").exists():
        destroy_state_dir(state_dir)


@pytest.mark.lab
@needs_root
def test_lab_model(built: dict) -> None:
    lab: Lab = built["lab"]
    assert lab.provisioner == "local" and lab.owned and lab.run_id == "test-local-lab"
    assert [h.name for h in lab.hosts] == ["h1", "h2", "h3"]
    assert all(ipaddress.ip_address(h.address) in ipaddress.ip_network(SUBNET) for h in lab.hosts)
    assert [h.name for h in lab.hosts_with("etcd")] == ["h1", "h2", "h3"]
    # this lab runs without Kubernetes: no host claims a control plane or a kubelet
    assert lab.hosts_with("master") == [] and lab.hosts_with("node") == []
    assert lab.kubernetes is None
    assert len(lab.hosts_with("docker")) == 3, lab.environment.get("docker")
    assert lab.etcd is not None and len(lab.etcd.endpoints) == 3
    env = lab.environment
    assert env["flannel"] in ("flanneld", "stackcheck plumbing (no flanneld on PATH)")
    for key in ("etcd_version", "docker_version", "ostree_version", "sshd_version"):
        assert env[key] and env[key] != "unknown"
    assert Path(env["ostree_sysroot.h1"]).is_dir()


@pytest.mark.lab
@needs_root
def test_inventory_round_trip(built: dict) -> None:
    lab: Lab = built["lab"]
    loaded = load_inventory(built["state_dir"] / "inventory.yaml")
    assert loaded.model_dump(exclude={"owned"}) == lab.model_dump(exclude={"owned"})
    assert (built["state_dir"] / "state.json").exists()


@pytest.mark.lab
@needs_root
def test_ssh_into_every_host(built: dict) -> None:
    from stackcheck.ssh import host_connection

    lab: Lab = built["lab"]
    subnets = set()
    for host in lab.hosts:
        conn = host_connection(lab, host)
        assert conn.check_output("hostname") == host.name
        env = conn.file("/run/flannel/subnet.env").content_string
        assert "FLANNEL_MTU=1450" in env and "FLANNEL_IPMASQ=false" in env
        subnets.add(next(x for x in env.splitlines() if x.startswith("FLANNEL_SUBNET=")))
        assert conn.run("ip -4 -o addr show eth0").stdout.count(host.address) == 1
    assert len(subnets) == len(lab.hosts), "each host must see its own subnet.env"


@pytest.mark.lab
@needs_root
def test_ssh_rejects_unknown_host_key(built: dict, tmp_path: Path) -> None:
    import paramiko

    lab: Lab = built["lab"]
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    client = paramiko.SSHClient()
    client.load_host_keys(str(empty))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    with pytest.raises(paramiko.SSHException):
        client.connect(lab.hosts[0].address, username="root",
                       key_filename=str(lab.ssh.identity_file), timeout=5,
                       allow_agent=False, look_for_keys=False)
    client.close()


def _etcd(lab: Lab, address: str):
    """The library's client (the lab CA pinned even if REQUESTS_CA_BUNDLE is set)."""
    from stackcheck.etcd import client_for

    assert lab.etcd is not None
    return client_for(lab.etcd, f"https://{address}:2379", timeout=5)


@pytest.mark.lab
@needs_root
def test_etcd_healthy_over_tls(built: dict) -> None:
    import requests

    lab: Lab = built["lab"]
    for host in lab.hosts_with("etcd"):
        client = _etcd(lab, host.address)
        assert client.status()["leader"] not in ("0", "")
    client = _etcd(lab, lab.hosts[0].address)
    assert len(client.members()) == 3
    client.put("/stackcheck/test", "ok")
    assert _etcd(lab, lab.hosts[2].address).get("/stackcheck/test") == [b"ok"]
    config = client.get("/coreos.com/network/config")
    assert b'"Network": "10.244.0.0/16"' in config[0] or b'"Network":"10.244.0.0/16"' in config[0]
    leases = client.get_prefix("/coreos.com/network/subnets/")
    assert len(leases) == 3
    # without a client certificate the member refuses
    anon = requests.Session()
    anon.trust_env = False
    with pytest.raises(requests.exceptions.RequestException):
        anon.get(f"https://{lab.hosts[0].address}:2379/version", verify=str(lab.etcd.ca_file),
                 timeout=5).raise_for_status()


@pytest.mark.lab
@needs_root
def test_vxlan_ping_between_containers(built: dict) -> None:
    from stackcheck.ssh import host_connection

    lab: Lab = built["lab"]
    h1, h2 = host_connection(lab, lab.hosts[0]), host_connection(lab, lab.hosts[1])
    h2.check_output("docker run -d --name peer busybox sleep 600")
    try:
        ip = h2.check_output("docker inspect -f '{{.NetworkSettings.IPAddress}}' peer")
        assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.244.2.0/24")
        out = h1.run(f"docker run --rm busybox ping -c 2 -W 2 -s 1400 {ip}")
        assert out.rc == 0, out.stdout + out.stderr
        assert "2 packets received" in out.stdout
        mtu = h1.check_output("cat /sys/class/net/flannel.1/mtu")
        assert mtu == "1450"
    finally:
        h2.run("docker rm -f peer")


@pytest.mark.lab
@needs_root
def test_ostree_status(built: dict) -> None:
    from stackcheck.ssh import host_connection

    lab: Lab = built["lab"]
    sysroot = lab.environment["ostree_sysroot.h1"]
    out = host_connection(lab, lab.hosts[0]).check_output(
        f"ostree admin status --sysroot {sysroot}")
    booted = Path(lab.environment["ostree_booted_file.h1"]).read_text().strip()
    assert f"stackcheck {booted}" in out
    log = host_connection(lab, lab.hosts[0]).check_output(
        f"ostree log --repo={sysroot}/ostree/repo {booted.split('.')[0]}")
    assert log.count("commit ") == 2, "the booted commit and its parent (the rollback)"


@pytest.mark.lab
@needs_root
def test_create_again_reuses_the_running_lab(built: dict) -> None:
    t0 = time.monotonic()
    again = built["prov"].create(built["config"])
    seconds = time.monotonic() - t0
    assert again.owned is False
    assert [h.address for h in again.hosts] == [h.address for h in built["lab"].hosts]
    assert seconds < 5, f"reuse took {seconds:.1f}s"


@pytest.mark.lab
@needs_root
def test_stop_and_start_etcd(built: dict) -> None:
    prov, lab = built["prov"], built["lab"]
    h3 = lab.host("h3")
    assert prov.service(lab, h3, "etcd", "is_active").ok
    stopped = prov.service(lab, h3, "etcd", "stop", timeout=20)
    assert stopped.ok, stopped.stderr
    assert prov.service(lab, h3, "etcd", "is_active").exit_status == 3
    _etcd(lab, lab.host("h1").address).put("/stackcheck/while-h3-down", "1")  # quorum kept
    started = prov.service(lab, h3, "etcd", "start", timeout=30)
    assert started.ok, started.stderr
    assert prov.service(lab, h3, "etcd", "is_active").ok
    assert prov.status(lab)["h3"]["etcd"] == "active"


@pytest.mark.lab
@needs_root
def test_control_cli_over_ssh(built: dict) -> None:
    """The service_control templates (for the existing provisioner) work inside a host."""
    from stackcheck.ssh import host_connection

    lab: Lab = built["lab"]
    h2 = lab.host("h2")
    conn = host_connection(lab, h2)
    control = lab.control_for(h2)
    assert conn.run(control.command("is_active", "etcd")).rc == 0
    assert conn.run(control.command("restart", "etcd")).rc == 0
    assert conn.run(control.command("is_active", "etcd")).rc == 0
    assert conn.run(lab.service_control.command("is_active", "docker")).rc == 0


@pytest.mark.lab
@needs_root
def test_reboot_boots_the_default_deployment(built: dict) -> None:
    from stackcheck.ssh import host_connection

    prov, lab = built["prov"], built["lab"]
    h3 = lab.host("h3")
    view = lab.environment["ostree_booted_view.h3"]
    # stage an upgrade from the lab's update repository
    subprocess.run([view, "ostree", "admin", "upgrade"], check=True, capture_output=True)
    booted_file = Path(lab.environment["ostree_booted_file.h3"])
    before = booted_file.read_text().strip()
    prov.reboot(lab, h3, timeout=60)
    after = booted_file.read_text().strip()
    assert after != before
    assert prov.status(lab)["h3"] == {"sshd": "active", "etcd": "active", "docker": "active"}
    assert host_connection(lab, h3).check_output("hostname") == "h3"


@pytest.mark.lab
@needs_root
def test_destroy_leaves_nothing(built: dict) -> None:
    from stackcheck.ssh import close_all

    close_all()
    t0 = time.monotonic()
    built["prov"].destroy(built["lab"])
    assert time.monotonic() - t0 < 30
    assert_nothing_left(built["before"], LAB_NAME, built["state_dir"])


_CHILD = """
import sys
from pathlib import Path
from stackcheck_provisioners.base import ProvisionConfig
from stackcheck_provisioners.local import LocalProvisioner
LocalProvisioner().create(ProvisionConfig(run_id="killed", state_dir=Path(sys.argv[1]), hosts=3,
                          options={"name": sys.argv[2], "subnet": sys.argv[3],
                                   "kubernetes": "false"}))
"""


@pytest.mark.lab
@needs_root
def test_destroy_after_kill_9_mid_bring_up(tmp_path: Path) -> None:
    from stackcheck_provisioners.hostlab import state

    before = snapshot(KILL_NAME)
    state_dir = tmp_path / "lab"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(state_dir), KILL_NAME,
                              KILL_SUBNET], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:  # kill it once daemons are being started
            data = state.read(state_dir) or {}
            if any(k.endswith("/sshd") for k in data.get("processes", {})):
                break
            time.sleep(0.01)
        else:
            pytest.fail("bring-up never started daemons")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert (state.read(state_dir) or {}).get("status") == "building"
    assert _lab_processes(KILL_NAME), "daemons outlive the killed harness"
    problems = destroy_state_dir(state_dir)
    assert problems == []
    assert_nothing_left(before, KILL_NAME, state_dir)
