"""flannel's data model as stored in etcd: the network config and one lease per host."""

from __future__ import annotations

import ipaddress
import json
import shlex
from dataclasses import dataclass, field

import testinfra
from etcd3gw.client import Etcd3Client

VXLAN_OVERHEAD = 50
DEFAULT_VNI = 1
DEFAULT_PORT = 8472


@dataclass
class NetworkConfig:
    network: ipaddress.IPv4Network
    subnet_len: int
    backend: str
    vni: int
    port: int
    raw: dict = field(default_factory=dict)


@dataclass
class Lease:
    subnet: ipaddress.IPv4Network
    public_ip: str
    backend: str
    vtep_mac: str | None
    key: str


def parse_config(text: str) -> NetworkConfig:
    """Parse ``<prefix>/config``; raises ValueError saying which field is wrong."""
    raw = json.loads(text)
    if "Network" not in raw:
        raise ValueError("config has no 'Network'")
    network = ipaddress.ip_network(raw["Network"])
    backend = raw.get("Backend", {}) or {}
    kind = backend.get("Type", "udp")
    return NetworkConfig(
        network=network,
        subnet_len=int(raw.get("SubnetLen", 24)),
        backend=kind,
        vni=int(backend.get("VNI", DEFAULT_VNI)),
        port=int(backend.get("Port", DEFAULT_PORT)),
        raw=raw,
    )


def parse_lease(key: str, text: str) -> Lease:
    """Parse ``<prefix>/subnets/<ip>-<len>`` and its JSON value."""
    name = key.rsplit("/", 1)[-1]
    address, _, length = name.partition("-")
    value = json.loads(text)
    data = value.get("BackendData") or {}
    return Lease(
        subnet=ipaddress.ip_network(f"{address}/{length}"),
        public_ip=value.get("PublicIP", ""),
        backend=value.get("BackendType", ""),
        vtep_mac=(data.get("VtepMAC") or "").lower() or None,
        key=key,
    )


def read_config(client: Etcd3Client, prefix: str) -> NetworkConfig:
    values = client.get(f"{prefix}/config")
    if not values:
        raise LookupError(f"no flannel config at {prefix}/config")
    return parse_config(values[0].decode())


def read_leases(client: Etcd3Client, prefix: str) -> list[Lease]:
    items = client.get_prefix(f"{prefix}/subnets/")
    return [parse_lease(meta["key"] if isinstance(meta["key"], str) else meta["key"].decode(),
                        value.decode()) for value, meta in items]


def lease_ttls(client: Etcd3Client, prefix: str) -> dict[str, str]:
    """Lease key -> 'ttl <remaining> s' (or 'no ttl'), for reporting stale leases."""
    out = {}
    for _, meta in client.get_prefix(f"{prefix}/subnets/"):
        key = meta["key"] if isinstance(meta["key"], str) else meta["key"].decode()
        lease_id = meta.get("lease")
        if not lease_id:
            out[key] = "no ttl"
            continue
        info = client.post(client.get_url("/kv/lease/timetolive"), json={"ID": int(lease_id)})
        out[key] = f"ttl {info.get('TTL', '?')} s"
    return out


def read_subnet_env(host: testinfra.host.Host) -> dict[str, str]:
    """``/run/flannel/subnet.env`` of a host as a dict (empty when missing)."""
    env = host.file("/run/flannel/subnet.env")
    if not env.exists:
        return {}
    out = {}
    for line in env.content_string.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep:
            out[key] = value
    return out


def ip_json(host: testinfra.host.Host, args: str, tool: str = "ip") -> list[dict]:
    """Run ``ip -j <args>`` (or ``bridge -j``) on a host and parse it."""
    result = host.run(f"{tool} -j {args}")
    if result.rc != 0:
        raise RuntimeError(f"{tool} {args}: {result.stderr.strip()}")
    return json.loads(result.stdout or "[]")


def uplink_mtu(host: testinfra.host.Host, address: str) -> int:
    """MTU of the interface that carries ``address``."""
    for link in ip_json(host, "addr show"):
        if any(a.get("local") == address for a in link.get("addr_info", [])):
            return int(link["mtu"])
    raise LookupError(f"no interface has address {address}")


def quote(text: str) -> str:
    return shlex.quote(text)
