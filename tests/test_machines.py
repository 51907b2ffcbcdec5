"""A machines lab (3 systemd-nspawn machines booted from ostree) passes the suites and each
suite catches a fault injected the way an operator would break a machine (systemctl, ostree).

The suites reach the lab only through its inventory (``existing`` path: systemctl, SSH);
the atomic suite really reboots the machines (``--allow-reboot``). One lab with Kubernetes
(kubelets on containerd) for the whole module. CI cost: ~8 min with the machine tree and the
Kubernetes build cached (measured 2026-12-03 at load 10 to 17; ~2.4 min before Kubernetes was
on; first run: + ~70 s to build the tree with mmdebstrap, with network for Debian's packages).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from stackcheck.atomic.boot import node_state, reboot
from stackcheck.kubernetes import connect
from stackcheck.lab import Lab
from stackcheck.ssh import close_all, host_connection
from stackcheck.waits import wait_for
from stackcheck_provisioners import ProvisionConfig, ProvisionerError, get_provisioner
from stackcheck_provisioners.hostlab import etcd as local_etcd
from stackcheck_provisioners.hostlab import network, pki
from stackcheck_provisioners.hostlab.cgroups import CGROUP_ROOT, lab_group
from stackcheck_provisioners.machines import kubernetes as kube
from stackcheck_provisioners.machines.build import make_lab
from stackcheck_provisioners.machines.config import docker_daemon, etcd_env, flannel_env
from stackcheck_provisioners.machines.provisioner import layout_for
from stackcheck_provisioners.machines.supervisor import boot_argv, nspawn_argv
from stackcheck_provisioners.machines.sysroot import default_deployment, stateroot_var

REPO = Path(__file__).resolve().parent.parent
F = TypeVar("F", bound=Callable[..., object])
NAME = "mch"
OPTIONS = {"name": NAME, "subnet": "10.213.16.0/24"}
#: kubelet's machine-wide sysctls: bound inside the machines, never changed on this machine
SYSCTLS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")


def needs_lab(func: F) -> F:
    """Marks of a check that builds (or uses) the module's machines lab."""
    for mark in (
        pytest.mark.lab,
        pytest.mark.slow,
        pytest.mark.skipif(os.geteuid() != 0, reason="a machines lab needs root"),
        pytest.mark.skipif(
            shutil.which("systemd-nspawn") is None or shutil.which("mmdebstrap") is None,
            reason="needs Debian's systemd-container and mmdebstrap"),
    ):
        func = mark(func)
    return func


# --- without a lab ----------------------------------------------------------------------


def _entry(sr: Path, version: int, target: str) -> None:
    entries = sr / "boot/loader/entries"
    entries.mkdir(parents=True, exist_ok=True)
    (entries / f"ostree-{version}-debian.conf").write_text(
        f"title Debian\nversion {version}\noptions root=x ostree=/ostree/boot.1/debian/abc/"
        f"{target} quiet\nlinux /vmlinuz\n")


def test_default_deployment_is_the_highest_versioned_entry(tmp_path: Path) -> None:
    sr = tmp_path / "sysroot"
    deploy = sr / "ostree/deploy/debian/deploy"
    for d in ("aaa.0", "bbb.0"):
        (deploy / d / "usr").mkdir(parents=True)
    links = sr / "ostree/boot.1/debian/abc"
    links.mkdir(parents=True)
    (links / "0").symlink_to("../../../deploy/debian/deploy/bbb.0")
    (links / "1").symlink_to("../../../deploy/debian/deploy/aaa.0")
    _entry(sr, 1, "1")
    _entry(sr, 2, "0")
    assert default_deployment(sr) == deploy / "bbb.0"
    (sr / "boot/loader/entries/ostree-2-debian.conf").unlink()
    assert default_deployment(sr) == deploy / "aaa.0"


def test_no_boot_entry_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ProvisionerError, match="no boot loader entry"):
        default_deployment(tmp_path)


def test_configuration_of_a_host(tmp_path: Path) -> None:
    layout = layout_for(ProvisionConfig("r1", tmp_path, hosts=3, options=dict(OPTIONS)))
    h1 = layout.hosts[0]
    env = dict(line.split("=", 1) for line in etcd_env(layout, h1).splitlines()[1:])
    assert env["ETCD_INITIAL_CLUSTER"] == ("h1=https://10.213.16.11:2380,"
                                           "h2=https://10.213.16.12:2380,"
                                           "h3=https://10.213.16.13:2380")
    assert env["ETCD_CLIENT_CERT_AUTH"] == env["ETCD_PEER_CLIENT_CERT_AUTH"] == "true"
    flannel = flannel_env(layout, h1)
    assert "10.244.2.0/24,10.213.16.12,0e:73:63:00:00:02" in flannel
    assert "10.244.1.0/24" not in flannel.split("PEERS=")[1]
    assert '"bip": "10.244.1.1/24"' in docker_daemon(h1)
    assert "bip" not in docker_daemon(h1, bridge=False)


def test_nspawn_boots_the_deployment_with_ostree_binds(tmp_path: Path) -> None:
    argv = nspawn_argv(tmp_path / "sr", tmp_path / "dep", "sc-x-h1", "x-h1", tmp_path / "up",
                       tmp_path / "marker", None)
    assert "--boot" in argv and f"--directory={tmp_path / 'dep'}" in argv
    assert f"--bind-ro={tmp_path / 'dep'}/usr:/usr" in argv
    assert f"--bind-ro={tmp_path / 'marker'}:/run/ostree-booted" in argv
    assert "--network-namespace-path=/run/netns/sc-x-h1" in argv
    assert "--bind=/dev/kmsg" not in argv and "--capability=CAP_SYSLOG" not in argv
    kubelet = nspawn_argv(tmp_path / "sr", tmp_path / "dep", "sc-x-h1", "x-h1", tmp_path / "up",
                          tmp_path / "marker", None, kubelet=True)
    assert {"--bind=/dev/kmsg", "--capability=CAP_SYSLOG"} <= set(kubelet)


def test_the_machine_root_is_a_private_bind_of_its_deployment(tmp_path: Path) -> None:
    """Booted from the deployment's own path, the /sysroot bind holds a peer of the root and
    every mount shows twice in the machine (kubelet then misses cgroup controllers)."""
    nspawn = nspawn_argv(tmp_path / "sr", tmp_path / "dep", "sc-x-h1", "x-h1", tmp_path / "up",
                         tmp_path / "marker", None, root=tmp_path / "root")
    assert f"--directory={tmp_path / 'root'}" in nspawn
    assert f"--bind={tmp_path / 'sr'}:/sysroot" in nspawn
    argv = boot_argv(tmp_path / "dep", tmp_path / "root", nspawn)
    assert argv[:3] == ["unshare", "--mount", "--propagation=private"]
    assert argv[-len(nspawn) - 2:] == [str(tmp_path / "dep"), str(tmp_path / "root"), *nspawn]


def test_kubernetes_is_files_and_units_in_the_machines(tmp_path: Path) -> None:
    """Certificates in each deployment's /etc, units and binaries in /usr/local (/var), the
    control plane only on h1, kubelet on containerd's CRI; no path of this machine leaks in."""
    layout = layout_for(ProvisionConfig("r1", tmp_path / "lab", hosts=3, options=dict(OPTIONS)))
    pki.make_tls(layout)
    kube.make_certificates(layout)
    bins = tmp_path / "bins"
    bins.mkdir()
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet",
                 "kube-proxy"):
        (bins / name).write_text("#!/bin/sh\n")
    for host in layout.hosts[:2]:
        dep = tmp_path / host.name / "deploy"
        kube.write_etc(layout, host, dep)
        kube.install(bins, layout, host)
        usrlocal = stateroot_var(host) / "usrlocal"
        units = {p.name: p.read_text() for p in (usrlocal / "lib/systemd/system").iterdir()}
        wants = {p.name for p in (dep / "etc/systemd/system/multi-user.target.wants").iterdir()}
        assert wants == set(units), host.name
        assert (usrlocal / "bin/kubelet").samefile(bins / "kubelet")
        kubelet = units["kubelet.service"]
        assert "--container-runtime=remote" in kubelet
        assert "--container-runtime-endpoint=unix:///run/containerd/containerd.sock" in kubelet
        assert "nodefs.available<2%%" in kubelet  # systemd's specifier escaped
        assert "ExecStartPre=/etc/kubernetes/node-setup.sh" in kubelet
        for text in units.values():
            assert str(tmp_path) not in text, text
        assert "restrict_oom_score_adj = true" in (dep / "etc/containerd/config.toml").read_text()
        assert (dep / "etc/kubernetes/pki/kubelet.key").stat().st_mode & 0o077 == 0
    h1 = {p.name for p in (stateroot_var(layout.hosts[0]) / "usrlocal/lib/systemd/system")
          .iterdir()}
    h2 = {p.name for p in (stateroot_var(layout.hosts[1]) / "usrlocal/lib/systemd/system")
          .iterdir()}
    assert h1 == {"kube-apiserver.service", "kube-controller-manager.service",
                  "kube-scheduler.service", "kubelet.service", "kube-proxy.service"}
    assert h2 == {"kubelet.service", "kube-proxy.service"}
    apiserver = (stateroot_var(layout.hosts[0]) / "usrlocal/lib/systemd/system"
                 / "kube-apiserver.service").read_text()
    assert "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt" in apiserver
    assert "ExecStart=/usr/local/bin/kube-apiserver" in apiserver
    assert not (tmp_path / "h2/deploy/etc/kubernetes/pki/ca.key").exists()


def test_machines_inventory_names_the_kubernetes_units(tmp_path: Path) -> None:
    layout = layout_for(ProvisionConfig("r1", tmp_path / "lab", hosts=3, options=dict(OPTIONS)))
    pki.make_tls(layout)
    pki.make_ssh(layout)
    kube.make_certificates(layout)
    lab = make_lab(layout, {}, k8s=True)
    h1, h2 = lab.host("h1"), lab.host("h2")
    assert h1.has_role("master") and h2.has_role("node") and not h2.has_role("master")
    assert lab.control_for(h1).units["kube-apiserver"] == "kube-apiserver"
    assert "kube-apiserver" not in lab.control_for(h2).units
    assert lab.control_for(h2).command("stop", "kubelet") == "systemctl stop kubelet"
    assert lab.control_for(h2).units["containerd"] == "containerd"
    off = make_lab(layout, {}, k8s=False)
    assert off.kubernetes is None and not off.hosts_with("node")


# --- a real machines lab ----------------------------------------------------------------


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> ProvisionConfig:
    return ProvisionConfig(run_id="machines", state_dir=tmp_path_factory.mktemp("mch") / "lab",
                           hosts=3, options=dict(OPTIONS))


@pytest.fixture(scope="module")
def real_sysctls() -> dict[str, str]:
    """This machine's values of kubelet's sysctls, before any machine booted."""
    return {k: Path("/proc/sys", k).read_text() for k in SYSCTLS}


@pytest.fixture(scope="module")
def lab(config: ProvisionConfig, real_sysctls: dict[str, str]) -> Iterator[Lab]:
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


@needs_lab
def test_machines_run_systemd_and_the_distribution_units(lab: Lab) -> None:
    assert lab.provisioner == "machines"
    for host in lab.hosts:
        assert sh(lab, host.name, "cat /proc/1/comm").strip() == "systemd"
        units: tuple[str, ...] = ("ssh", "etcd", "docker", "flanneld", "containerd")
        if host.has_role("node"):
            units += ("kubelet", "kube-proxy")
        if host.has_role("master"):
            units += ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
        states = sh(lab, host.name, f"systemctl is-active {' '.join(units)}").split()
        assert states == ["active"] * len(units), (
            f"{host.name}: {dict(zip(units, states, strict=True))}")
        assert "*" in sh(lab, host.name, "ostree admin status")


@needs_lab
def test_kubelets_are_units_in_the_machines_on_containerd(lab: Lab, real_sysctls: dict) -> None:
    """3 Ready nodes whose kubelets are ``kubelet.service`` of each machine's systemd, on its
    containerd; kubelet's sysctls hold inside the machines, this machine keeps its own."""
    assert lab.kubernetes is not None and "kubelet" in lab.control_for(lab.hosts[0]).units
    kube = connect(str(lab.kubernetes.kubeconfig))
    nodes = {n.metadata.name: n for n in kube.core.list_node().items}
    assert sorted(nodes) == [h.name for h in lab.hosts]
    for host in lab.hosts:
        node = nodes[host.name]
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        assert ready.status == "True", f"{host.name}: {ready.reason}: {ready.message}"
        assert node.status.node_info.container_runtime_version.startswith("containerd://")
        pid = sh(lab, host.name, "systemctl show -p MainPID --value kubelet").strip()
        assert sh(lab, host.name, f"cat /proc/{pid}/comm").strip() == "kubelet"
        assert "/usr/local/bin/kubelet" in sh(lab, host.name, f"tr '\\0' ' ' < /proc/{pid}/cmdline")
        inside = sh(lab, host.name, f"cat {' '.join('/proc/sys/' + k for k in SYSCTLS)}")
        assert inside.split() == ["1", "10", "1"], f"{host.name}: {inside}"
        # each cgroup controller mounted once (no copy under /sysroot/ostree/deploy/...)
        mounts = sh(lab, host.name, "awk '$(NF-2) == \"cgroup\" {print $5}' "
                    "/proc/self/mountinfo").split()
        assert mounts and all(m.startswith("/sys/fs/cgroup/") for m in mounts), (
            f"{host.name}: {mounts}")
    assert {k: Path("/proc/sys", k).read_text() for k in SYSCTLS} == real_sysctls


def _allowed_skip(line: str) -> bool:
    """Skips a full run may show on this lab: opt-in checks, not a missing layer (Docker's
    own checks run: each machine runs docker.service beside its kubelet on containerd)."""
    return any(reason in line for reason in (
        "upstream e2e conformance is opt-in", "kube-system runs no pods",
        "nothing to upgrade", "the lab has no Kubernetes", "no DaemonSet to check"))


@needs_lab
def test_suites_pass_with_real_reboots(lab: Lab) -> None:
    suites = (["suites"] if lab.kubernetes else
              ["suites/etcd", "suites/docker", "suites/flannel", "suites/atomic"])
    result = run_suite(lab, "-n", "2", "--dist", "loadgroup", "--allow-reboot", *suites,
                       timeout=1500)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    skips = [ln for ln in result.stdout.splitlines() if ln.startswith("SKIPPED")]
    assert all(_allowed_skip(ln) for ln in skips), "\n".join(skips)
    # the supervisors booted each machine again (upgrade reboot + rollback reboot)
    assert lab.state_dir is not None
    for host in lab.hosts:
        log = (Path(lab.state_dir) / "hosts" / host.name / "console.log").read_text()
        assert log.count("rebooting into the default deployment") >= 2, log[-2000:]


@needs_lab
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


@needs_lab
def test_docker_suite_catches_a_stopped_daemon(lab: Lab) -> None:
    """docker.service beside a kubelet on containerd: stopped, Docker's checks fail on h2 only
    (its kubelet's runtime does not excuse it: the machine runs Docker)."""
    try:
        sh(lab, "h2", "systemctl stop docker.socket docker")
        result = run_suite(lab, "suites/docker/test_daemon.py")
        assert result.returncode != 0, result.stdout[-2000:]
        failed = [ln for ln in result.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
        assert any("test_daemon_answers[h2]" in ln for ln in failed), result.stdout[-2000:]
        assert "h2: docker.service inactive since" in result.stdout, result.stdout[-2000:]
        assert "MTU default" not in result.stdout, result.stdout[-2000:]  # not a wrong MTU
        assert not any(h in ln for ln in failed for h in ("[h1]", "[h3]", "h1:", "h3:")), (
            "\n".join(failed))
        assert "not Docker" not in result.stdout, result.stdout[-2000:]  # no check skipped
    finally:
        sh(lab, "h2", "systemctl start docker")


@needs_lab
def test_flannel_suite_catches_a_stopped_flanneld(lab: Lab) -> None:
    try:
        sh(lab, "h3", "systemctl stop flanneld")
        result = run_suite(lab, "suites/flannel/test_host_plumbing.py")
        assert result.returncode != 0, result.stdout[-2000:]
        assert "h3" in result.stdout, result.stdout[-2000:]
    finally:
        sh(lab, "h3", "systemctl start flanneld")


@needs_lab
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


def wait_node(lab: Lab, name: str, ready: bool, timeout: float = 90) -> str:
    """Wait (bounded) until Node ``name`` is (not) Ready; return what the API said."""
    host = lab.host(name)

    def reached() -> str | None:
        seen = node_state(lab, host)
        return seen if (seen == "Ready") == ready else None

    return wait_for(reached, timeout=timeout, interval=2,
                    what=f"Node {name} {'Ready' if ready else 'NotReady'}",
                    describe=lambda: node_state(lab, host))


#: the Kubernetes faults, one per machine, caught by one run: (host, fault, restore)
K8S_FAULTS = (
    ("h1", "systemctl stop kubelet", "systemctl start kubelet"),
    ("h2", "systemctl mask kubelet", "systemctl unmask kubelet && systemctl start kubelet"),
    ("h3", "systemctl stop containerd", "systemctl start containerd docker"),
)


@needs_lab
def test_kubernetes_suite_catches_each_broken_machine(lab: Lab) -> None:
    """kubelet stopped on h1, kubelet masked then h2 rebooted (it comes back without kubelet),
    containerd stopped on h3: each node NotReady for its own reason, and the kubernetes
    suite names each machine. One NotReady wait and one suite run for the three (selftest
    time); healthy machines are not blamed since every machine is broken differently."""
    try:
        for name, fault, _ in K8S_FAULTS:
            sh(lab, name, fault)
        reboot(lab, get_provisioner("machines"), lab.host("h2"))
        close_all()
        state_ = host_connection(lab, lab.host("h2")).run(
            "systemctl is-active kubelet").stdout.strip()
        assert state_ == "inactive", f"h2 after a reboot with kubelet masked: {state_}"
        assert sh(lab, "h2", "systemctl is-enabled kubelet || true").strip() == "masked"
        seen = {name: wait_node(lab, name, ready=False) for name, _, _ in K8S_FAULTS}
        assert "container runtime" in seen["h3"], seen
        result = run_suite(lab, "suites/kubernetes/test_preflight.py")
        assert result.returncode != 0, result.stdout[-2000:]
        out = result.stdout
        assert "expected every node Ready; not ready: {" in out, out[-2000:]
        for name in ("'h1'", "'h2'", "'h3'"):
            assert f"{name}: " in out, f"{name} not named: {out[-2000:]}"
        assert "container runtime is down" in out, out[-2000:]
        assert "h1: kubelet.service inactive" in out, out[-2000:]  # the preflight's own word
    finally:
        close_all()
        wait_for(lambda: _answers(lab, "h2"), timeout=120, interval=1, what="h2 answers ssh")
        for name, _, restore in K8S_FAULTS:
            sh(lab, name, restore)
        for name, _, _ in K8S_FAULTS:
            wait_node(lab, name, ready=True, timeout=120)


def _answers(lab: Lab, name: str) -> bool:
    try:
        return host_connection(lab, lab.host(name)).run("true").rc == 0
    except Exception:  # noqa: BLE001 - still booting
        close_all()
        return False


@needs_lab
def test_lab_down_leaves_nothing(lab: Lab, config: ProvisionConfig) -> None:
    get_provisioner("machines").abort(config)
    layout = layout_for(config)
    assert not {h.netns for h in layout.hosts} & network.netns_list()
    assert layout.root_link not in network.root_links()
    assert not list(CGROUP_ROOT.glob(f"*/{lab_group(NAME)}"))
    assert not Path(config.state_dir).exists()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert f"--netns sc-{NAME}-h" not in ps and f"sc-{NAME}-h1" not in ps
