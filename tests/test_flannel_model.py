"""flannel's formats, parsed from real recorded data (tests/data/flannel, provenance in its
README and in each file): lease keys (v4, dual-stack, invalid), a v3 lease value, net-conf.json
from flannel's manifests (kube-flannel and kube-system), a Node's kube-subnet-mgr annotations,
dual-stack config and subnet.env; the lab's writer and the checks' reader round-trip (through a
real etcd 3.4 on loopback); and a
real etcd 3.4 serving flannel < 0.18's v2 keys is told apart from "no config"."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from stackcheck.etcd import client_for
from stackcheck.flannel import etcd_store
from stackcheck.flannel import kube as km
from stackcheck.flannel.etcd_store import V2_ADVICE, v2_config
from stackcheck.flannel.model import (
    DEFAULT_NETWORK,
    Lease,
    compact,
    lease_attrs,
    nth_subnet,
    parse_config,
    parse_lease,
    parse_subnet_env,
    parse_subnet_key,
    subnet_env,
    subnet_key,
    vxlan_backend_data,
    vxlan_config,
)
from stackcheck.flannel.plumbing import backend_settings, host_gw_peer, vxlan_peer, wireguard_peer
from stackcheck.flannel.source import from_etcd
from stackcheck.lab import EtcdAccess

DATA = Path(__file__).parent / "data" / "flannel"


def _json(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def _yaml_docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DATA / name).read_text()) if d]


# --- lease keys and values (flannel pkg/subnet/subnet_test.go, reservations.md) ----------


def test_lease_keys_parse_like_flannel() -> None:
    data = _json("leases.json")
    for key, (v4, v6) in {**data["keys_v4"], **data["keys_dual_stack"]}.items():
        subnet, ipv6 = parse_subnet_key(key)
        assert str(subnet) == v4
        assert (str(ipv6) if ipv6 else None) == v6
        assert subnet_key(subnet, ipv6) == key, "MakeSubnetKey must give the key back"


@pytest.mark.parametrize("key", _json("leases.json")["keys_invalid"])
def test_invalid_lease_keys_are_refused_saying_which(key: str) -> None:
    with pytest.raises(ValueError, match="lease key"):
        parse_subnet_key(key)


def test_a_recorded_v3_lease_parses() -> None:
    recorded = _json("leases.json")["etcd_lease"]
    lease = parse_lease(recorded["key"], recorded["value"])
    assert lease.subnet == ipaddress.ip_network("10.5.52.0/24")
    assert (lease.public_ip, lease.backend, lease.vtep_mac, lease.vni) == (
        "192.168.64.3", "vxlan", "c6:d2:32:6f:8f:44", 1)
    assert lease.public_ipv6 is None and lease.ipv6_subnet is None


def test_the_writer_writes_flannels_lease_value() -> None:
    """The lab's plumbing writes a lease value byte for byte as flanneld does."""
    recorded = _json("leases.json")["etcd_lease"]["value"]
    written = compact(lease_attrs("192.168.64.3", "vxlan",
                                  vxlan_backend_data("c6:d2:32:6f:8f:44")))
    assert written == recorded


def test_a_dual_stack_lease_parses() -> None:
    value = compact(lease_attrs("10.0.0.1", "vxlan", vxlan_backend_data("aa:bb:cc:dd:ee:ff"),
                                public_ipv6="fd00::1"))
    lease = parse_lease("/coreos.com/network/subnets/10.12.13.0-24&fd00:12:13::-56", value)
    assert lease.subnets == "10.12.13.0/24 & fd00:12:13::/56"
    assert lease.public_ipv6 == "fd00::1"


# --- net-conf.json in flannel's manifests ------------------------------------------------


@pytest.mark.parametrize("name, namespace", [
    ("kube-flannel-v0.27.4.yml", "kube-flannel"),
    ("kube-flannel-v0.13.0-rc2-configmap.yml", "kube-system"),
])
def test_the_manifests_configmap_parses(name: str, namespace: str) -> None:
    cm = next(d for d in _yaml_docs(name) if d["kind"] == "ConfigMap")
    assert (cm["metadata"]["name"], cm["metadata"]["namespace"]) == (km.CONFIGMAP, namespace)
    assert namespace in km.NAMESPACES
    config = km.configmap_config(cm["data"], f"ConfigMap {namespace}/{km.CONFIGMAP}")
    assert str(config.network) == "10.244.0.0/16"
    assert (config.backend, config.vni, config.port, config.subnet_len) == ("vxlan", 1, 8472, 24)


def test_the_manifests_daemonset_is_the_one_looked_for() -> None:
    ds = next(d for d in _yaml_docs("kube-flannel-v0.27.4.yml") if d["kind"] == "DaemonSet")
    assert ds["metadata"]["name"] == km.DAEMONSET
    assert "--kube-subnet-mgr" in ds["spec"]["template"]["spec"]["containers"][0]["args"]


def test_a_configmap_without_net_conf_says_so() -> None:
    with pytest.raises(ValueError, match=r"ConfigMap kube-flannel/kube-flannel-cfg has no "
                                         r"net-conf\.json"):
        km.configmap_config({"cni-conf.json": "{}"}, "ConfigMap kube-flannel/kube-flannel-cfg")


def test_a_broken_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="'SubnetLen' must be a number"):
        parse_config('{"Network": "10.244.0.0/16", "SubnetLen": "x"}')
    with pytest.raises(ValueError, match="'Network' 2001:db8::/64 is not an IPv4 network"):
        parse_config('{"Network": "2001:db8::/64"}')
    with pytest.raises(ValueError, match="not JSON"):
        parse_config('{"Network": ')


# --- dual-stack and IPv6 -------------------------------------------------------------------


def test_dual_stack_config_and_subnet_env() -> None:
    data = _json("dual-stack.json")
    config = parse_config(data["net_conf"])
    assert config.enable_ipv6 and str(config.ipv6_network) == "2001:cafe:42::/56"
    assert config.ipv6_subnet_len == 64
    env = parse_subnet_env(data["subnet_env"])
    subnet6 = ipaddress.ip_interface(env["FLANNEL_IPV6_SUBNET"]).network
    assert subnet6.subnet_of(config.ipv6_network)  # type: ignore[arg-type]
    assert subnet6.prefixlen == config.ipv6_subnet_len


def test_an_ipv6_only_network_parses() -> None:
    config = parse_config('{"EnableIPv4": false, "EnableIPv6": true, '
                          '"IPv6Network": "fd00:10:244::/56", "Backend": {"Type": "host-gw"}}')
    assert config.network is None and str(config.ipv6_network) == "fd00:10:244::/56"
    assert config.backend == "host-gw"


# --- Kubernetes mode: the Node's annotations ----------------------------------------------


def test_a_recorded_nodes_annotations_make_its_lease() -> None:
    node = _yaml_docs("node-kube-subnet-mgr.yml")[0]
    notes = node["metadata"]["annotations"]
    assert km.has_lease(notes)
    lease = km.lease_from_node(node["metadata"]["name"], notes, node["spec"]["podCIDRs"])
    assert lease.key == "Node master-node-k8.f5demo.com"
    assert lease.subnet == ipaddress.ip_network("10.244.0.0/24")
    assert (lease.public_ip, lease.backend, lease.vtep_mac, lease.vni) == (
        "192.168.200.65", "vxlan", "c2:e5:af:15:7c:f6", 1)


def test_the_writer_writes_flannels_annotations() -> None:
    """What the lab's plumbing writes on a Node is what flanneld wrote on the recorded one."""
    node = _yaml_docs("node-kube-subnet-mgr.yml")[0]
    notes = node["metadata"]["annotations"]
    lease = km.lease_from_node("n", notes, ["10.244.0.0/24"])
    flannel_own = {k: v for k, v in notes.items() if k.startswith(km.PREFIX)}
    assert km.node_annotations(lease) == flannel_own


def test_a_bad_backend_data_annotation_names_the_node() -> None:
    with pytest.raises(ValueError, match=r"Node h2: annotation flannel.alpha.coreos.com/"
                                         r"backend-data is not JSON"):
        km.lease_from_node("h2", {km.BACKEND_DATA: "{VNI:1", km.BACKEND_TYPE: "vxlan"},
                           ["10.244.2.0/24"])


def test_a_node_without_flannel_has_no_lease() -> None:
    assert not km.has_lease({"node.alpha.kubernetes.io/ttl": "0"})
    assert not km.has_lease(None)


# --- backends: what a host programs for a peer ---------------------------------------------


def _lease(backend: str, data: dict) -> Lease:
    return parse_lease("/p/subnets/10.244.2.0-24",
                       compact(lease_attrs("10.0.0.12", backend, data)))


def test_peer_facts_per_backend() -> None:
    vx = _lease("vxlan", vxlan_backend_data("aa:bb:cc:dd:ee:02"))
    routes = {"10.244.2.0/24": {"dst": "10.244.2.0/24", "gateway": "10.244.2.0",
                                "dev": "flannel.1", "flags": ["onlink"]}}
    neigh = {"10.244.2.0": {"dst": "10.244.2.0", "lladdr": "aa:bb:cc:dd:ee:02",
                            "state": ["PERMANENT"]}}
    assert vxlan_peer("h2", vx, routes, neigh, {("aa:bb:cc:dd:ee:02", "10.0.0.12")}) == []
    assert vxlan_peer("h2", vx, routes, neigh, set())[0].startswith(
        "peer h2: expected FDB entry aa:bb:cc:dd:ee:02 dst 10.0.0.12")
    gw = _lease("host-gw", {})
    assert host_gw_peer("h2", gw, {"10.244.2.0/24": {"gateway": "10.0.0.12"}}) == []
    assert host_gw_peer("h2", gw, {}) == [
        "peer h2: expected route 10.244.2.0/24 via 10.0.0.12 (host-gw); saw None"]
    wg = _lease("wireguard", {"PublicKey": "x"})
    network_route = {"10.244.0.0/16": {"dst": "10.244.0.0/16", "dev": "flannel-wg"}}
    assert wireguard_peer("h2", wg, network_route, "flannel-wg") == []
    assert wireguard_peer("h2", wg, {}, "flannel-wg") == [
        "peer h2: expected a route on flannel-wg covering 10.244.2.0/24 (wireguard); "
        "flannel-wg routes []"]


def test_a_host_follows_its_lease_not_a_disagreeing_config() -> None:
    """Issue 28: the config says udp; a host whose lease says vxlan is checked as vxlan with
    flannel's vxlan defaults, not the udp settings."""
    config = parse_config('{"Network": "10.244.0.0/16", "Backend": {"Type": "udp", '
                          '"Port": 8285}}')
    lease = parse_lease("/p/subnets/10.244.1.0-24", compact(lease_attrs(
        "10.0.0.11", "vxlan", {"VtepMAC": "aa:bb:cc:dd:ee:01"})))
    assert backend_settings(config, lease) == (1, 8472)


# --- etcd's v2 store (flannel < 0.18), on a real etcd 3.4 ---------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd is not installed")
@contextlib.contextmanager
def _etcd(tmp_path: Path, *args: str) -> Iterator[str]:
    """A real etcd (Debian's) on loopback, stopped at the end: its client URL."""
    client, peer = _free_port(), _free_port()
    url = f"http://127.0.0.1:{client}"
    proc = subprocess.Popen(
        ["etcd", *args, "--name", "probe", "--data-dir", str(tmp_path / "data"),
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"probe=http://127.0.0.1:{peer}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "etcd did not answer in 10 s"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_v2_store_is_told_apart_from_no_config(tmp_path: Path) -> None:
    with _etcd(tmp_path, "--enable-v2") as url:
        access = EtcdAccess(endpoints=[url])
        assert v2_config(access, "/coreos.com/network") is None, "no key: no v2 config"
        config = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
        put = requests.put(f"{url}/v2/keys/coreos.com/network/config", data={"value": config},
                           timeout=5)
        assert put.status_code in (200, 201), put.text
        assert v2_config(access, "/coreos.com/network") == config
        assert "flannel < 0.18 keeps its keys in etcd's v2 API" in V2_ADVICE


# --- the lab's writer and the checks' reader: one model ----------------------------------


def test_the_writers_defaults_are_the_manifests() -> None:
    """The network a lab writes by default is kube-flannel's (its manifest's net-conf.json)."""
    cm = next(d for d in _yaml_docs("kube-flannel-v0.27.4.yml") if d["kind"] == "ConfigMap")
    manifest = km.configmap_config(cm["data"], "kube-flannel-cfg")
    written = parse_config(compact(vxlan_config()))
    assert (written.network, written.subnet_len, written.backend, written.vni, written.port) == (
        manifest.network, manifest.subnet_len, manifest.backend, manifest.vni, manifest.port)
    assert str(written.network) == DEFAULT_NETWORK


def test_the_writer_writes_flanneld_s_subnet_env() -> None:
    """Line for line as flanneld writes it (the recorded dual-stack file, IPv4 lines)."""
    recorded = _json("dual-stack.json")["subnet_env"]
    ipv4 = "".join(line + "\n" for line in recorded.splitlines() if "IPV6" not in line)
    assert subnet_env("10.42.0.0/16", "10.42.0.0/24", 1450, ipmasq=True) == ipv4
    assert parse_subnet_env(subnet_env(DEFAULT_NETWORK, "10.244.3.0/24", 1450)) == {
        "FLANNEL_NETWORK": "10.244.0.0/16", "FLANNEL_SUBNET": "10.244.3.1/24",
        "FLANNEL_MTU": "1450", "FLANNEL_IPMASQ": "false"}


def test_a_labs_plan_of_subnets() -> None:
    assert str(nth_subnet("10.244.0.0/16", 3)) == "10.244.3.0/24"
    assert str(nth_subnet("10.42.0.0/16", 300, 26)) == "10.42.75.0/26"
    with pytest.raises(ValueError, match=r"10\.244\.0\.0/16 has no subnet /24 number 256"):
        nth_subnet("10.244.0.0/16", 256)


def test_what_the_lab_writes_the_checks_read(tmp_path: Path) -> None:
    """Written through :mod:`stackcheck.flannel.etcd_store` into a real etcd, read back the
    way the checks read: the same keys, config and leases (with their TTL)."""
    prefix = "/coreos.com/network"
    with _etcd(tmp_path) as url:
        client = client_for(EtcdAccess(endpoints=[url]), url)
        etcd_store.write_config(client, prefix, vxlan_config())
        lease = client.lease(ttl=600)
        for index, mac in ((1, "0e:73:63:00:00:01"), (2, "0e:73:63:00:00:02")):
            attrs = lease_attrs(f"10.213.0.1{index}", "vxlan", vxlan_backend_data(mac))
            etcd_store.write_lease(client, prefix, str(nth_subnet(DEFAULT_NETWORK, index)),
                                  attrs, lease=lease)
        data = from_etcd(client, prefix)
        assert data is not None and data.problem is None and not data.invalid
        assert data.config == etcd_store.read_config(client, prefix)
        assert str(data.config.network) == DEFAULT_NETWORK and data.config.backend == "vxlan"
        leases = sorted(etcd_store.read_leases(client, prefix), key=lambda lease_: lease_.key)
        assert [(str(x.subnet), x.public_ip, x.vtep_mac, x.vni) for x in leases] == [
            ("10.244.1.0/24", "10.213.0.11", "0e:73:63:00:00:01", 1),
            ("10.244.2.0/24", "10.213.0.12", "0e:73:63:00:00:02", 1)]
        assert leases[0].key == etcd_store.lease_key(prefix, "10.244.1.0/24") == (
            "/coreos.com/network/subnets/10.244.1.0-24")
        ttls = etcd_store.lease_ttls(client, prefix)
        assert all(0 < int(ttl.split()[1]) <= 600 for ttl in ttls.values()), ttls


# --- the local lab's option flannel=kube (no lab needed) -------------------------------------


def test_the_local_labs_flannel_option(tmp_path: Path) -> None:
    from stackcheck_provisioners.base import ProvisionConfig, ProvisionerError
    from stackcheck_provisioners.hostlab import k8s_services
    from stackcheck_provisioners.hostlab.layout import Layout
    from stackcheck_provisioners.local.provisioner import LocalProvisioner, layout_for

    default = layout_for(ProvisionConfig("r", tmp_path, hosts=2))
    assert default.flannel == "etcd"
    kube = layout_for(ProvisionConfig("r", tmp_path, hosts=2, options={"flannel": "kube"}))
    assert Layout.recorded(tmp_path, "r", kube.options()) == kube
    data = {"kubernetes": {"bin_dir": "/bins", "control_plane": "h1", "kubelets": True}}
    argv = k8s_services.argv(kube, data, kube.hosts[0], "kube-controller-manager")
    assert {"--allocate-node-cidrs=true", "--cluster-cidr=10.244.0.0/16",
            "--node-cidr-mask-size=24"} <= set(argv)
    plain = k8s_services.argv(default, data, default.hosts[0], "kube-controller-manager")
    assert not any(a.startswith("--allocate-node-cidrs") for a in plain)
    with pytest.raises(ProvisionerError, match="option flannel='udp': Input should be 'etcd' "
                       "or 'kube'"):
        LocalProvisioner.parse_options({"flannel": "udp"})
    with pytest.raises(ProvisionerError, match="option flannel='kube': needs Kubernetes"):
        LocalProvisioner.parse_options({"flannel": "kube", "kubernetes": "false"})
