"""flannel on each host, as the host runs it: subnet.env against the host's lease, the overlay
device of the host's own backend (from its lease, not the config), and what that backend
programs for every peer (vxlan: route, neighbour, FDB; host-gw: a route via the peer;
wireguard: the network routed on flannel-wg)."""

import ipaddress

import allure
import pytest

from stackcheck.flannel.model import (
    VXLAN_OVERHEAD,
    WIREGUARD_DEVICE,
    Lease,
    ip_json,
    read_subnet_env,
    uplink_mtu,
)
from stackcheck.flannel.plumbing import (
    VXLAN_DEVICE,
    backend_settings,
    by_dst,
    host_gw_peer,
    vxlan_peer,
    wireguard_peer,
)
from stackcheck.lab import Host, Lab

pytestmark = [allure.feature("host plumbing"), pytest.mark.role("flannel")]

#: bytes each backend's encapsulation takes from the uplink MTU (flannel's backends; for
#: wireguard only the device MTU against subnet.env is checked)
OVERHEAD = {"vxlan": VXLAN_OVERHEAD, "host-gw": 0}


@allure.id("flannel-subnet-env-matches-lease")
def test_subnet_env_matches_lease(lab_host: Host, host, lease_of) -> None:
    env = read_subnet_env(host)
    assert env, f"{lab_host.name}: expected /run/flannel/subnet.env; it is missing or empty"
    lease = lease_of(lab_host)
    if lease.subnet is not None:
        subnet = ipaddress.ip_interface(env.get("FLANNEL_SUBNET", "0.0.0.0/0"))
        assert subnet.network == lease.subnet, (
            f"{lab_host.name}: subnet.env FLANNEL_SUBNET={env.get('FLANNEL_SUBNET')}, "
            f"the lease ({lease.key}) is {lease.subnet}"
        )
    if lease.ipv6_subnet is not None:
        v6 = env.get("FLANNEL_IPV6_SUBNET", "")
        assert v6 and ipaddress.ip_interface(v6).network == lease.ipv6_subnet, (
            f"{lab_host.name}: subnet.env FLANNEL_IPV6_SUBNET={v6 or '(none)'}, "
            f"the lease ({lease.key}) is {lease.ipv6_subnet}"
        )
    if lease.backend in OVERHEAD:
        expected = uplink_mtu(host, lab_host.address) - OVERHEAD[lease.backend]
        assert env.get("FLANNEL_MTU") == str(expected), (
            f"{lab_host.name}: subnet.env FLANNEL_MTU={env.get('FLANNEL_MTU')}, expected "
            f"{expected} (uplink MTU minus {OVERHEAD[lease.backend]} for {lease.backend})"
        )


def _device(host, name: str) -> dict | None:
    links = ip_json(host, f"-d link show dev {name}") if host.run(
        f"ip link show dev {name}").rc == 0 else []
    return links[0] if links else None


@allure.id("flannel-vxlan-device")
def test_overlay_device_fits_the_backend(lab_host: Host, host, lease_of, flannel) -> None:
    """The device of the host's own backend: vxlan's flannel.1 (nolearning, its VNI and port),
    wireguard's flannel-wg; host-gw has none. The lease's VtepMAC, VNI and PublicIP against
    the device are the data model's check (flannel-lease-matches-host)."""
    lease: Lease = lease_of(lab_host)
    if lease.backend == "host-gw":
        assert _device(host, VXLAN_DEVICE) is None, (
            f"{lab_host.name}: runs host-gw (its lease), yet has a {VXLAN_DEVICE} device")
        return
    if lease.backend == "wireguard":
        link = _device(host, WIREGUARD_DEVICE)
        assert link is not None, (f"{lab_host.name}: runs wireguard (its lease); expected a "
                                  f"{WIREGUARD_DEVICE} device; there is none")
        kind = (link.get("linkinfo") or {}).get("info_kind")
        assert kind == "wireguard", f"{lab_host.name}: {WIREGUARD_DEVICE} is a {kind} device"
        return
    if lease.backend != "vxlan":
        pytest.skip(f"{lab_host.name} runs {lease.backend!r} (its lease): stackcheck checks "
                    "the devices of vxlan, host-gw and wireguard")
    link = _device(host, VXLAN_DEVICE)
    assert link is not None, (f"{lab_host.name}: runs vxlan (its lease); expected a "
                              f"{VXLAN_DEVICE} device; there is none")
    info = link.get("linkinfo", {})
    data = info.get("info_data", {})
    vni, port = backend_settings(flannel.config, lease)
    seen = {"kind": info.get("info_kind"), "port": data.get("port"),
            "learning": data.get("learning")}
    expected = {"kind": "vxlan", "port": port, "learning": False}
    if lease.vni is None:  # else the lease's VNI is compared by flannel-lease-matches-host
        seen["id"], expected["id"] = data.get("id"), vni
    wrong = {k: f"{seen[k]!r} (expected {expected[k]!r})" for k in expected
             if seen[k] != expected[k]}
    assert not wrong, f"{lab_host.name}: {VXLAN_DEVICE} differs: {wrong}"


def _sound_peers(lab: Lab, lab_host: Host, leases: list[Lease],
                 overlay_devices: dict[str, dict | None]) -> tuple[dict[str, Lease], list[str]]:
    """The other flannel hosts' leases, except those that disagree with their own host's
    device (the data model's finding, not this host's) and stale leases (no inventory host)."""
    names = {h.address: h.name for h in lab.hosts_with("flannel") if h.name != lab_host.name}
    peers, excused = {}, []
    for lease in leases:
        name = names.get(lease.public_ip)
        if name is None:
            continue
        link = (overlay_devices.get(name) or {}).get(VXLAN_DEVICE)
        if lease.backend == "vxlan" and link is not None and lease.vtep_mac and (
                (link.get("address") or "").lower() != lease.vtep_mac):
            excused.append(name)
            continue
        peers[name] = lease
    return peers, excused


@allure.id("flannel-peer-routes-neigh-fdb")
def test_every_peer_has_route_neighbour_and_fdb(
    lab: Lab, lab_host: Host, host, lease_of, leases, overlay_devices
) -> None:
    mine: Lease = lease_of(lab_host)
    peers, excused = _sound_peers(lab, lab_host, leases, overlay_devices)
    problems = []
    if mine.backend == "vxlan":
        routes = by_dst(ip_json(host, f"route show dev {VXLAN_DEVICE}"))
        neigh = {n.get("dst"): n for n in ip_json(host, f"neigh show dev {VXLAN_DEVICE}")}
        fdb = {(f.get("mac", "").lower(), f.get("dst")) for f in
               ip_json(host, f"fdb show dev {VXLAN_DEVICE}", tool="bridge") if f.get("dst")}
        for name, lease in sorted(peers.items()):
            problems += vxlan_peer(name, lease, routes, neigh, fdb)
    elif mine.backend == "host-gw":
        routes = by_dst(ip_json(host, "route show"))
        for name, lease in sorted(peers.items()):
            problems += host_gw_peer(name, lease, routes)
    elif mine.backend == "wireguard":
        routes = by_dst(ip_json(host, f"route show dev {WIREGUARD_DEVICE}"))
        for name, lease in sorted(peers.items()):
            problems += wireguard_peer(name, lease, routes, WIREGUARD_DEVICE)
    else:
        pytest.skip(f"{lab_host.name} runs {mine.backend!r} (its lease): stackcheck checks the "
                    "peer plumbing of vxlan, host-gw and wireguard")
    assert not problems, f"{lab_host.name}: " + "; ".join(problems)
    if excused:
        pytest.skip(f"{lab_host.name}: every other peer is programmed; not compared: "
                    f"{', '.join(excused)} (its lease disagrees with its own {VXLAN_DEVICE}: "
                    "flannel-lease-matches-host)")


@allure.id("flannel-overlay-mtu-matches-subnet-env")
def test_overlay_device_mtu_is_the_subnet_env_mtu(lab_host: Host, host, lease_of) -> None:
    """The overlay device's MTU is the FLANNEL_MTU that subnet.env hands to Docker and the
    CNI (vxlan's flannel.1, wireguard's flannel-wg; host-gw has no overlay device)."""
    lease: Lease = lease_of(lab_host)
    device = {"vxlan": VXLAN_DEVICE, "wireguard": WIREGUARD_DEVICE}.get(lease.backend)
    if device is None:
        pytest.skip(f"{lab_host.name} runs {lease.backend!r} (its lease): no overlay device")
    mtu = read_subnet_env(host).get("FLANNEL_MTU")
    assert mtu, f"{lab_host.name}: expected FLANNEL_MTU in /run/flannel/subnet.env; there is none"
    link = _device(host, device)
    assert link is not None, f"{lab_host.name}: expected a {device} device; there is none"
    assert str(link.get("mtu")) == mtu, (
        f"{lab_host.name}: {device} MTU {link.get('mtu')}, subnet.env says FLANNEL_MTU={mtu}"
    )
