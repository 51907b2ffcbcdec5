"""flannel on each host: subnet.env, the vxlan device, and routes/neighbours/FDB to every peer."""

import ipaddress

import allure
import pytest

from stackcheck.flannel.model import (
    VXLAN_OVERHEAD,
    NetworkConfig,
    ip_json,
    read_subnet_env,
    uplink_mtu,
)
from stackcheck.lab import Host, Lab

pytestmark = [allure.feature("host plumbing"), pytest.mark.role("flannel")]


@allure.id("flannel-subnet-env-matches-lease")
def test_subnet_env_matches_lease(lab_host: Host, host, lease_of, flannel_config) -> None:
    env = read_subnet_env(host)
    assert env, f"{lab_host.name}: expected /run/flannel/subnet.env; it is missing or empty"
    lease = lease_of(lab_host)
    subnet = ipaddress.ip_interface(env.get("FLANNEL_SUBNET", "0.0.0.0/0"))
    assert subnet.network == lease.subnet, (
        f"{lab_host.name}: subnet.env FLANNEL_SUBNET={env.get('FLANNEL_SUBNET')}, "
        f"the lease in etcd is {lease.subnet}"
    )
    if flannel_config.backend == "vxlan":
        expected = uplink_mtu(host, lab_host.address) - VXLAN_OVERHEAD
        assert env.get("FLANNEL_MTU") == str(expected), (
            f"{lab_host.name}: subnet.env FLANNEL_MTU={env.get('FLANNEL_MTU')}, expected "
            f"{expected} (uplink MTU minus {VXLAN_OVERHEAD} for vxlan)"
        )


def _vxlan_or_skip(config: NetworkConfig) -> None:
    if config.backend != "vxlan":
        pytest.skip(f"the backend is {config.backend}, not vxlan")


@allure.id("flannel-vxlan-device")
def test_vxlan_device_matches_config(lab_host: Host, host, lease_of, flannel_config) -> None:
    _vxlan_or_skip(flannel_config)
    links = ip_json(host, "-d link show dev flannel.1") if host.run(
        "ip link show dev flannel.1").rc == 0 else []
    assert links, f"{lab_host.name}: expected a flannel.1 device; there is none"
    link = links[0]
    info = link.get("linkinfo", {})
    data = info.get("info_data", {})
    seen = {"kind": info.get("info_kind"), "id": data.get("id"), "port": data.get("port"),
            "learning": data.get("learning"), "mac": link.get("address", "").lower()}
    expected = {"kind": "vxlan", "id": flannel_config.vni, "port": flannel_config.port,
                "learning": False, "mac": lease_of(lab_host).vtep_mac}
    wrong = {k: f"{seen[k]!r} (expected {expected[k]!r})" for k in expected
             if seen[k] != expected[k]}
    assert not wrong, f"{lab_host.name}: flannel.1 differs: {wrong}"


@allure.id("flannel-peer-routes-neigh-fdb")
def test_every_peer_has_route_neighbour_and_fdb(
    lab: Lab, lab_host: Host, host, leases, flannel_config
) -> None:
    _vxlan_or_skip(flannel_config)
    routes = {r.get("dst"): r for r in ip_json(host, "route show dev flannel.1")}
    neigh = {n.get("dst"): n for n in ip_json(host, "neigh show dev flannel.1")}
    fdb_entries = ip_json(host, "fdb show dev flannel.1", tool="bridge")
    fdb = {(f.get("mac", "").lower(), f.get("dst")) for f in fdb_entries if f.get("dst")}
    problems = []
    # only the leases of the other flannel hosts: a stale lease (no inventory host) is the
    # lease check's finding, not this host's
    peers = {h.address: h.name for h in lab.hosts_with("flannel") if h.name != lab_host.name}
    for lease in leases:
        peer = peers.get(lease.public_ip)
        if peer is None:
            continue
        gateway = str(lease.subnet.network_address)
        route = routes.get(str(lease.subnet))
        if route is None or route.get("gateway") != gateway or "onlink" not in route.get(
                "flags", []):
            problems.append(f"peer {peer}: expected route {lease.subnet} via {gateway} dev "
                            f"flannel.1 onlink; saw {route}")
        entry = neigh.get(gateway)
        if entry is None or (entry.get("lladdr") or "").lower() != lease.vtep_mac or (
                "PERMANENT" not in entry.get("state", [])):
            problems.append(f"peer {peer}: expected permanent neighbour {gateway} lladdr "
                            f"{lease.vtep_mac}; saw {entry}")
        if (lease.vtep_mac, lease.public_ip) not in fdb:
            problems.append(f"peer {peer}: expected FDB entry {lease.vtep_mac} dst "
                            f"{lease.public_ip}; flannel.1 has {sorted(fdb)}")
    assert not problems, f"{lab_host.name}: " + "; ".join(problems)


@allure.id("flannel-overlay-mtu-matches-subnet-env")
def test_overlay_device_mtu_is_the_subnet_env_mtu(lab_host: Host, host, flannel_config) -> None:
    """flannel.1's MTU is the FLANNEL_MTU that subnet.env hands to Docker and the CNI."""
    _vxlan_or_skip(flannel_config)
    mtu = read_subnet_env(host).get("FLANNEL_MTU")
    assert mtu, f"{lab_host.name}: expected FLANNEL_MTU in /run/flannel/subnet.env; there is none"
    links = ip_json(host, "link show dev flannel.1") if host.run(
        "ip link show dev flannel.1").rc == 0 else []
    assert links, f"{lab_host.name}: expected a flannel.1 device; there is none"
    device = links[0].get("mtu")
    assert str(device) == mtu, (
        f"{lab_host.name}: flannel.1 MTU {device}, subnet.env says FLANNEL_MTU={mtu}"
    )
