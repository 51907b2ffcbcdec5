"""Kubernetes in the local lab: a real control plane and real kubelets, and nothing left after.

The lab tests (marker ``lab``, root only) build one 3-host lab with Kubernetes (binaries
from the cache; the first build takes 10-15 minutes), talk to it with the official
``kubernetes`` client through the inventory's kubeconfig, and check that the machine's
sysctls are never changed and that teardown removes every process, pod cgroup and mount.
The other tests need no root.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from stackcheck.lab import Lab, load_inventory
from stackcheck_provisioners.base import ProvisionConfig
from stackcheck_provisioners.hostlab import k8s_pki, kubelet, pki
from stackcheck_provisioners.hostlab.layout import Layout
from stackcheck_provisioners.local import LocalProvisioner, destroy_state_dir
from stackcheck_provisioners.local.provisioner import layout_for

LAB_NAME = "k8st"
SUBNET = "10.213.21.0/24"
SYSCTLS = ["vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
           "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"]
APP = "spread"

pytestmark = pytest.mark.xdist_group("local-k8s")  # one lab for the module, never split
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="the local lab needs root (network namespaces, mounts, cgroups)"
)


def machine_sysctls() -> dict[str, str]:
    return {k: Path("/proc/sys", k).read_text().strip() for k in SYSCTLS}


# --- without root: options, certificates, the runtime wrapper ----------------------------


def test_options_kubernetes_and_bin_dir(tmp_path: Path) -> None:
    default = layout_for(ProvisionConfig("r", tmp_path))
    assert default.kubernetes and default.k8s_bin_dir is None
    off = layout_for(ProvisionConfig("r", tmp_path, options={"kubernetes": "false",
                                                             "k8s_bin_dir": "bins"}))
    assert not off.kubernetes
    assert off.k8s_bin_dir == str((Path.cwd() / "bins").resolve())
    again = Layout.recorded(tmp_path, "r", off.options())
    assert again == off, "options() must round-trip through the state file"


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _subject(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [a.value for a in cert.subject.get_attributes_for_oid(oid)]


def test_certificates_names_and_groups(tmp_path: Path) -> None:
    layout = layout_for(ProvisionConfig("r", tmp_path / "lab", hosts=2,
                                        options={"subnet": SUBNET}))
    pki.make_tls(layout)
    h1, h2 = layout.hosts
    k8s_pki.make_control_plane(layout, h1)
    k8s_pki.make_node(layout, h1, h2)
    d = k8s_pki.k8s_dir(layout)
    san = _cert(d / "apiserver.crt").extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
    assert {h1.address, "10.96.0.1"} <= ips, ips
    assert {"kubernetes", "kubernetes.default",
            "kubernetes.default.svc.cluster.local"} <= set(san.get_values_for_type(x509.DNSName))
    assert _subject(_cert(d / "admin.crt"), NameOID.ORGANIZATION_NAME) == ["system:masters"]
    node = load_kubeconfig_cert(k8s_pki.node_dir(h2) / "kubelet.kubeconfig")
    assert _subject(node, NameOID.COMMON_NAME) == ["system:node:h2"]
    assert _subject(node, NameOID.ORGANIZATION_NAME) == ["system:nodes"]
    for name in ("controller-manager", "scheduler"):
        cert = load_kubeconfig_cert(d / f"{name}.kubeconfig")
        assert _subject(cert, NameOID.COMMON_NAME) == [f"system:kube-{name}"]
    ca = _cert(layout.pki_dir / "ca.crt")
    assert node.issuer == ca.subject
    assert oct((d / "admin.kubeconfig").stat().st_mode & 0o777) == "0o600"


def load_kubeconfig_cert(path: Path) -> x509.Certificate:
    import base64

    import yaml

    user = yaml.safe_load(path.read_text())["users"][0]["user"]
    return x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))


def test_runc_wrapper_zeroes_negative_oom_score_adj(tmp_path: Path) -> None:
    layout = layout_for(ProvisionConfig("r", tmp_path / "lab", hosts=1))
    host = layout.hosts[0]
    host.dir.mkdir(parents=True)
    kubelet.prepare(layout, host)
    daemon = json.loads((host.dir / "docker-daemon.json").read_text())
    wrapper = Path(daemon["runtimes"][daemon["default-runtime"]]["path"])
    fake_runc = tmp_path / "runc"
    fake_runc.write_text('#!/bin/sh\necho "runc $*"\n')
    fake_runc.chmod(0o755)
    wrapper.write_text(wrapper.read_text().replace(
        wrapper.read_text().splitlines()[-1], f'exec {fake_runc} "$@"'))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text('{"process":{"oomScoreAdj":-998,"args":["/pause"]}}')
    process = tmp_path / "process.json"
    process.write_text('{"args":["sh"],"oomScoreAdj": -997}')
    out = subprocess.run([str(wrapper), "--root", "/x", "create", "--bundle", str(bundle), "c1"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"runc --root /x create --bundle {bundle} c1"
    assert json.loads((bundle / "config.json").read_text())["process"]["oomScoreAdj"] == 0
    subprocess.run([str(wrapper), "exec", f"--process={process}", "c1"], check=True,
                   capture_output=True)
    assert json.loads(process.read_text())["oomScoreAdj"] == 0
    (bundle / "config.json").write_text('{"process":{"oomScoreAdj":500}}')
    subprocess.run([str(wrapper), "create", "-b", str(bundle), "c2"], check=True,
                   capture_output=True)
    assert json.loads((bundle / "config.json").read_text())["process"]["oomScoreAdj"] == 500


# --- a real lab with Kubernetes ------------------------------------------------------------


def _lab_pids() -> set[int]:
    marker = f"STACKCHECK_LAB={LAB_NAME}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    if os.geteuid() != 0:
        pytest.skip("the local lab needs root (network namespaces, mounts, cgroups)")
    sysctls = machine_sysctls()
    state_dir = tmp_path_factory.mktemp("k8s") / "lab"
    prov = LocalProvisioner()
    config = ProvisionConfig(run_id="test-local-k8s", state_dir=state_dir, hosts=3,
                             options={"name": LAB_NAME, "subnet": SUBNET})
    t0 = time.monotonic()
    lab = prov.create(config)
    ctx = {"prov": prov, "lab": lab, "state_dir": state_dir, "sysctls": sysctls,
           "create_seconds": time.monotonic() - t0,
           "layout": layout_for(ProvisionConfig("x", state_dir, options=config.options))}
    try:
        yield ctx
    finally:
        from stackcheck.ssh import close_all

        close_all()
        if (state_dir / "state.json").exists():
            destroy_state_dir(state_dir)


@pytest.fixture(scope="module")
def kube(built: dict):
    from kubernetes import client, config

    lab: Lab = built["lab"]
    assert lab.kubernetes is not None, lab.environment.get("kubernetes")
    api = config.new_client_from_config(str(lab.kubernetes.kubeconfig))
    return client.CoreV1Api(api), client.AppsV1Api(api)


@pytest.mark.lab
@needs_root
def test_inventory_and_environment(built: dict) -> None:
    lab: Lab = built["lab"]
    env = lab.environment
    assert env["kubernetes"] == "control plane + 3 kubelets (dockershim)", env["kubernetes"]
    assert env["kubernetes_version"] == "v1.20.2"
    assert env["kubernetes_etcd_prefix"] == f"/registry-{LAB_NAME}"
    assert [h.name for h in lab.hosts_with("master")] == ["h1"]
    assert [h.name for h in lab.hosts_with("node")] == ["h1", "h2", "h3"]
    loaded = load_inventory(built["state_dir"] / "inventory.yaml")
    assert loaded.kubernetes is not None
    assert loaded.kubernetes.kubeconfig == lab.kubernetes.kubeconfig
    assert str(loaded.kubernetes.kubeconfig).startswith(str(built["state_dir"]))
    print(f"bring-up with Kubernetes: {built['create_seconds']:.1f}s")


@pytest.mark.lab
@needs_root
def test_every_host_is_a_ready_node(built: dict, kube) -> None:
    core, _ = kube
    lab: Lab = built["lab"]
    nodes = {n.metadata.name: n for n in core.list_node().items}
    assert sorted(nodes) == [h.name for h in lab.hosts]
    for host in lab.hosts:
        node = nodes[host.name]
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        assert ready.status == "True", f"{host.name}: {ready.reason}: {ready.message}"
        internal = [a.address for a in node.status.addresses if a.type == "InternalIP"]
        assert internal == [host.address], f"{host.name}: InternalIP {internal}"
        assert node.status.node_info.container_runtime_version.startswith("docker://")
        assert node.status.node_info.kubelet_version == "v1.20.2"


def _deployment() -> dict:
    labels = {"app": APP}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP},
        "spec": {
            "replicas": 3, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "terminationGracePeriodSeconds": 0,
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": labels},
                     "topologyKey": "kubernetes.io/hostname"}]}},
                "containers": [{"name": "busybox", "image": "busybox:1.29",
                                "imagePullPolicy": "IfNotPresent",
                                "command": ["sleep", "3600"]}],
            }},
        },
    }


@pytest.mark.lab
@needs_root
def test_deployment_spreads_over_nodes_and_pods_ping_across_hosts(built: dict, kube) -> None:
    from kubernetes.stream import stream

    core, apps = kube
    lab: Lab = built["lab"]
    apps.create_namespaced_deployment("default", _deployment())
    deadline = time.monotonic() + 90
    pods: list = []
    while time.monotonic() < deadline:
        pods = [p for p in core.list_namespaced_pod("default", label_selector=f"app={APP}").items
                if p.status.phase == "Running" and p.status.pod_ip]
        if len(pods) == 3:
            break
        time.sleep(1)
    placed = {p.spec.node_name: p for p in pods}
    assert sorted(placed) == ["h1", "h2", "h3"], f"running pods per node: {sorted(placed)}"
    for host in lab.hosts:
        subnet = ipaddress.ip_network(f"10.244.{host.name[1:]}.0/24")
        ip = placed[host.name].status.pod_ip
        assert ipaddress.ip_address(ip) in subnet, f"{host.name}: pod IP {ip} not in {subnet}"
    target = placed["h3"].status.pod_ip
    out = stream(core.connect_get_namespaced_pod_exec, placed["h1"].metadata.name, "default",
                 command=["ping", "-c", "2", "-W", "2", target], stderr=True, stdout=True,
                 stdin=False, tty=False, _request_timeout=30)
    assert "2 packets received" in out, f"h1 pod -> h3 pod {target}: {out}"


@pytest.mark.lab
@needs_root
def test_node_authorizer_and_etcd_prefix(built: dict) -> None:
    """A kubelet's identity cannot read secrets (Node,RBAC); the API keeps its own etcd prefix."""
    from kubernetes import client, config

    from stackcheck.etcd import client_for

    lab: Lab = built["lab"]
    h2 = built["layout"].host("h2")
    as_node = client.CoreV1Api(config.new_client_from_config(
        str(k8s_pki.node_dir(h2) / "kubelet.kubeconfig")))
    with pytest.raises(client.ApiException) as denied:
        as_node.list_secret_for_all_namespaces()
    assert denied.value.status == 403, "system:node:h2 must not read every secret"
    assert lab.etcd is not None
    etcd = client_for(lab.etcd, lab.etcd.endpoints[0])
    keys = etcd.get_prefix(f"/registry-{LAB_NAME}/minions/")
    assert sorted(meta["key"].decode().rsplit("/", 1)[1] for _v, meta in keys) == [
        "h1", "h2", "h3"]


@pytest.mark.lab
@needs_root
def test_machine_sysctls_untouched_while_kubelets_run(built: dict) -> None:
    from stackcheck.ssh import host_connection

    assert machine_sysctls() == built["sysctls"], "the machine's sysctls changed"
    lab: Lab = built["lab"]
    inside = host_connection(lab, lab.hosts[1]).check_output(
        "cat /proc/sys/vm/overcommit_memory /proc/sys/kernel/panic")
    assert inside.split() == ["1", "10"], "h2's kubelet should see its own (bound) values"


@pytest.mark.lab
@needs_root
def test_service_control_of_kubernetes(built: dict, kube) -> None:
    from stackcheck.ssh import host_connection

    prov, lab = built["prov"], built["lab"]
    status = prov.status(lab)
    assert all(status["h1"][s] == "active" for s in (
        "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"))
    assert status["h3"]["kubelet"] == "active" and "kube-apiserver" not in status["h3"]
    h3 = lab.host("h3")
    stopped = prov.service(lab, h3, "kubelet", "stop")
    assert stopped.ok, stopped.stderr
    assert prov.service(lab, h3, "kubelet", "is_active").exit_status == 3
    started = prov.service(lab, h3, "kubelet", "start", timeout=60)
    assert started.ok, started.stderr
    conn = host_connection(lab, lab.hosts[0])
    result = conn.run(lab.control_for(lab.hosts[0]).command("restart", "kube-scheduler"))
    assert result.rc == 0, result.stderr
    assert conn.run(lab.control_for(lab.hosts[0]).command("is_active", "kube-apiserver")).rc == 0
    core, _ = kube

    def h3_ready() -> bool:
        node = core.read_node("h3")
        return next(c for c in node.status.conditions if c.type == "Ready").status == "True"

    deadline = time.monotonic() + 60
    while not h3_ready():
        assert time.monotonic() < deadline, "h3 did not turn Ready within 60s of its kubelet start"
        time.sleep(0.5)


@pytest.mark.lab
@needs_root
def test_teardown_leaves_nothing(built: dict) -> None:
    from stackcheck.ssh import close_all

    close_all()
    lab: Lab = built["lab"]
    pod_pids = kubelet.pod_pids({"resources": [
        {"kind": "cgroup_root", "name": f"/{LAB_NAME}-{h.name}"} for h in lab.hosts]})
    assert pod_pids, "pods should be running before teardown"
    built["prov"].destroy(lab)
    deadline = time.monotonic() + 5
    while _lab_pids() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _lab_pids(), f"lab processes left: {_lab_pids()}"
    alive = {p for p in pod_pids if Path(f"/proc/{p}").exists()
             and "Z" not in Path(f"/proc/{p}/stat").read_text().split(")")[-1][:3]}
    assert not alive, f"pod processes left: {alive}"
    left = sorted(str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{LAB_NAME}-h*"))
    left += sorted(str(p) for p in Path("/sys/fs/cgroup").glob(f"*/stackcheck-{LAB_NAME}"))
    assert not left, f"cgroups left: {left}"
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(built["state_dir"]) not in mounts and f"sc-{LAB_NAME}-" not in mounts
    assert not (built["state_dir"] / "state.json").exists()
    assert not (built["state_dir"] / "kubernetes").exists()
    assert machine_sysctls() == built["sysctls"], "the machine's sysctls changed"
