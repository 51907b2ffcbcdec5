"""What each flannel backend programs on a host for every remote lease, compared with the
host's ``ip -j`` output (flannel's ``backend/vxlan``, ``backend/hostgw``, ``backend/wireguard``).

- vxlan: route ``<subnet> via <subnet>.0 dev flannel.1 onlink``, permanent neighbour
  ``<subnet>.0 lladdr <VtepMAC>``, FDB ``<VtepMAC> dst <PublicIP>``.
- host-gw: route ``<subnet> via <PublicIP>`` on the uplink; no flannel.1.
- wireguard: the flannel network routed on ``flannel-wg``, covering every peer's subnet.
"""

from __future__ import annotations

import ipaddress

from stackcheck.flannel.model import DEFAULT_PORT, DEFAULT_VNI, Lease, NetworkConfig

VXLAN_DEVICE = "flannel.1"


def backend_settings(config: NetworkConfig | None, lease: Lease) -> tuple[int, int]:
    """(VNI, port) a host running ``lease.backend`` uses: its lease's VNI, else the config's
    when the config names the same backend, else flannel's defaults."""
    same = config is not None and config.backend == lease.backend
    vni = lease.vni if lease.vni is not None else (config.vni if same and config else DEFAULT_VNI)
    port = config.port if same and config else DEFAULT_PORT
    return vni, port


def by_dst(routes: list[dict]) -> dict[str, dict]:
    return {r.get("dst", ""): r for r in routes}


def vxlan_peer(peer: str, lease: Lease, routes: dict[str, dict], neigh: dict[str, dict],
               fdb: set[tuple[str, str]]) -> list[str]:
    if lease.subnet is None:
        return []
    gateway = str(lease.subnet.network_address)
    out = []
    route = routes.get(str(lease.subnet))
    if route is None or route.get("gateway") != gateway or "onlink" not in route.get("flags", []):
        out.append(f"peer {peer}: expected route {lease.subnet} via {gateway} dev {VXLAN_DEVICE} "
                   f"onlink; saw {route}")
    entry = neigh.get(gateway)
    if entry is None or (entry.get("lladdr") or "").lower() != lease.vtep_mac or (
            "PERMANENT" not in entry.get("state", [])):
        out.append(f"peer {peer}: expected permanent neighbour {gateway} lladdr "
                   f"{lease.vtep_mac}; saw {entry}")
    if (lease.vtep_mac, lease.public_ip) not in fdb:
        out.append(f"peer {peer}: expected FDB entry {lease.vtep_mac} dst {lease.public_ip}; "
                   f"{VXLAN_DEVICE} has {sorted(fdb)}")
    return out


def host_gw_peer(peer: str, lease: Lease, routes: dict[str, dict]) -> list[str]:
    if lease.subnet is None:
        return []
    route = routes.get(str(lease.subnet))
    if route is None or route.get("gateway") != lease.public_ip:
        return [f"peer {peer}: expected route {lease.subnet} via {lease.public_ip} "
                f"(host-gw); saw {route}"]
    return []


def wireguard_peer(peer: str, lease: Lease, routes: dict[str, dict], device: str) -> list[str]:
    """wireguard routes the whole flannel network on its device (one link-scope route);
    the peer's subnet must fall inside a route on ``device``. (Each peer's AllowedIPs are
    in the device's wireguard config: reading them needs ``wg`` on the host.)"""
    if lease.subnet is None:
        return []
    for dst, route in routes.items():
        try:
            covers = lease.subnet.subnet_of(ipaddress.ip_network(dst))  # type: ignore[arg-type]
        except (ValueError, TypeError):
            continue
        if covers and route.get("dev", device) == device:
            return []
    return [f"peer {peer}: expected a route on {device} covering {lease.subnet} (wireguard); "
            f"{device} routes {sorted(routes)}"]
