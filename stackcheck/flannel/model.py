"""flannel's data model, wherever it is stored: the network config and one lease per host.

The formats are flannel's own (``pkg/subnet``): a lease key is ``<ip>-<len>`` or, dual-stack,
``<ip>-<len>&<ip6>-<len6>``; a lease value is the JSON of ``LeaseAttrs`` (``PublicIP``,
``PublicIPv6``, ``BackendType``, ``BackendData``, ``BackendV6Data``). The config is the JSON
of ``<prefix>/config`` in etcd or of ``net-conf.json`` in Kubernetes mode.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import testinfra


VXLAN_OVERHEAD = 50
DEFAULT_VNI = 1
DEFAULT_PORT = 8472
#: kube-flannel's network (its manifest's ``net-conf.json``) and flannel's lease size
DEFAULT_NETWORK = "10.244.0.0/16"
DEFAULT_SUBNET_LEN = 24
#: the backends whose host facts stackcheck checks (others are recognised by name only)
BACKENDS = ("vxlan", "host-gw", "wireguard", "udp")
WIREGUARD_DEVICE = "flannel-wg"
WIREGUARD_V6_DEVICE = "flannel-wg-v6"
_KEY = re.compile(r"^(\d+\.\d+\.\d+\.\d+)-(\d+)(?:&([0-9a-fA-F:]+)-(\d+))?$")


@dataclass
class NetworkConfig:
    network: ipaddress.IPv4Network | None
    subnet_len: int
    backend: str
    vni: int
    port: int
    ipv6_network: ipaddress.IPv6Network | None = None
    ipv6_subnet_len: int = 64
    enable_ipv4: bool = True
    enable_ipv6: bool = False
    raw: dict = field(default_factory=dict)


@dataclass
class Lease:
    """One host's lease. ``key`` says where it lives: an etcd key or ``Node <name>``."""

    subnet: ipaddress.IPv4Network | None
    public_ip: str
    backend: str
    vtep_mac: str | None
    key: str
    ipv6_subnet: ipaddress.IPv6Network | None = None
    public_ipv6: str | None = None
    backend_data: dict = field(default_factory=dict)
    node: str | None = None

    @property
    def vni(self) -> int | None:
        """The VNI the lease announces (vxlan's ``BackendData.VNI``), if any."""
        value = self.backend_data.get("VNI")
        return int(value) if isinstance(value, int | str) and str(value).isdigit() else None

    @property
    def subnets(self) -> str:
        return " & ".join(str(s) for s in (self.subnet, self.ipv6_subnet) if s is not None)


def parse_config(text: str) -> NetworkConfig:
    """Parse flannel's network config JSON; raises ValueError saying which field is wrong."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
    enable_ipv4 = bool(raw.get("EnableIPv4", True))
    enable_ipv6 = bool(raw.get("EnableIPv6", False))
    network = _network(raw, "Network", 4) if enable_ipv4 or "Network" in raw else None
    ipv6 = _network(raw, "IPv6Network", 6) if enable_ipv6 or "IPv6Network" in raw else None
    if network is None and ipv6 is None:
        raise ValueError("config has no 'Network' (nor 'IPv6Network' with EnableIPv6)")
    backend = raw.get("Backend") or {}
    if not isinstance(backend, dict):
        raise ValueError(f"'Backend' must be an object, got {backend!r}")
    default_len = 24 if network is None or network.prefixlen <= 24 else network.prefixlen + 1
    return NetworkConfig(
        network=network,
        subnet_len=_int(raw, "SubnetLen", default_len),
        backend=str(backend.get("Type", "udp")),
        vni=_int(backend, "VNI", DEFAULT_VNI),
        port=_int(backend, "Port", DEFAULT_PORT),
        ipv6_network=ipv6,
        ipv6_subnet_len=_int(raw, "IPv6SubnetLen", 64),
        enable_ipv4=enable_ipv4,
        enable_ipv6=enable_ipv6,
        raw=raw,
    )


def _network(raw: dict, name: str, version: int):
    if name not in raw:
        raise ValueError(f"config has no '{name}'")
    try:
        net = ipaddress.ip_network(raw[name])
    except ValueError as exc:
        raise ValueError(f"'{name}': {exc}") from None
    if net.version != version:
        raise ValueError(f"'{name}' {net} is not an IPv{version} network")
    return net


def _int(raw: dict, name: str, default: int) -> int:
    value = raw.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"'{name}' must be a number, got {value!r}") from None


def parse_subnet_key(name: str) -> tuple[ipaddress.IPv4Network, ipaddress.IPv6Network | None]:
    """``10.5.52.0-24`` or ``10.5.52.0-24&fc00::-64`` (flannel's ``ParseSubnetKey``)."""
    match = _KEY.match(name)
    if not match:
        raise ValueError(f"lease key {name!r} is not <ip>-<len> or <ip>-<len>&<ipv6>-<len>")
    try:
        subnet = ipaddress.IPv4Network(f"{match[1]}/{match[2]}")
        ipv6 = ipaddress.IPv6Network(f"{match[3]}/{match[4]}") if match[3] else None
    except ValueError as exc:
        raise ValueError(f"lease key {name!r}: {exc}") from None
    return subnet, ipv6


def subnet_key(subnet: ipaddress.IPv4Network | str,
               ipv6_subnet: ipaddress.IPv6Network | str | None = None) -> str:
    """The lease key name of a subnet (flannel's ``MakeSubnetKey``)."""
    v4 = ipaddress.IPv4Network(subnet)
    key = f"{v4.network_address}-{v4.prefixlen}"
    if ipv6_subnet is not None:
        v6 = ipaddress.IPv6Network(ipv6_subnet)
        key += f"&{v6.network_address}-{v6.prefixlen}"
    return key


def vxlan_config(network: str = DEFAULT_NETWORK, subnet_len: int = DEFAULT_SUBNET_LEN,
                 vni: int = DEFAULT_VNI, port: int = DEFAULT_PORT) -> dict:
    """A network config with the vxlan backend, as an operator writes it (the JSON of
    ``<prefix>/config``, or of ``net-conf.json`` in Kubernetes mode)."""
    return {"Network": network, "SubnetLen": subnet_len,
            "Backend": {"Type": "vxlan", "VNI": vni, "Port": port}}


def nth_subnet(network: str, index: int,
               subnet_len: int = DEFAULT_SUBNET_LEN) -> ipaddress.IPv4Network:
    """The ``index``-th subnet of ``network`` (``10.244.0.0/16``, 3 -> ``10.244.3.0/24``):
    a lab's plan of which host leases which subnet."""
    net = ipaddress.IPv4Network(network)
    size = 2 ** (32 - subnet_len)
    if subnet_len < net.prefixlen or not 0 <= index < 2 ** (subnet_len - net.prefixlen):
        raise ValueError(f"{network} has no subnet /{subnet_len} number {index}")
    return ipaddress.IPv4Network((int(net.network_address) + index * size, subnet_len))


def subnet_env(network: str, subnet: ipaddress.IPv4Network | str, mtu: int,
               ipmasq: bool = False) -> str:
    """``/run/flannel/subnet.env`` as flanneld writes it: the host's subnet as its first
    address (the bridge's) with the subnet's length."""
    net = ipaddress.IPv4Network(subnet)
    return (f"FLANNEL_NETWORK={network}\n"
            f"FLANNEL_SUBNET={net.network_address + 1}/{net.prefixlen}\n"
            f"FLANNEL_MTU={mtu}\n"
            f"FLANNEL_IPMASQ={str(ipmasq).lower()}\n")


def vxlan_backend_data(vtep_mac: str, vni: int = DEFAULT_VNI) -> dict:
    """vxlan's ``BackendData`` as flanneld writes it."""
    return {"VNI": vni, "VtepMAC": vtep_mac}


def lease_attrs(public_ip: str, backend: str, backend_data: dict,
                public_ipv6: str | None = None) -> dict:
    """A lease value (flannel's ``LeaseAttrs``), fields in flannel's order."""
    return {"PublicIP": public_ip, "PublicIPv6": public_ipv6, "BackendType": backend,
            "BackendData": backend_data}


def compact(value: dict) -> str:
    """JSON as Go's ``json.Marshal`` writes it (no spaces)."""
    return json.dumps(value, separators=(",", ":"))


def parse_lease(key: str, text: str) -> Lease:
    """Parse ``<prefix>/subnets/<key name>`` and its JSON value (``LeaseAttrs``)."""
    subnet, ipv6 = parse_subnet_key(key.rsplit("/", 1)[-1])
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{key}: not JSON ({exc.msg})") from None
    return lease_from_attrs(key, subnet, ipv6, value)


def lease_from_attrs(key: str, subnet, ipv6, value: dict, node: str | None = None) -> Lease:
    data = value.get("BackendData") or {}
    if not isinstance(data, dict):
        raise ValueError(f"{key}: BackendData must be an object, got {data!r}")
    return Lease(
        subnet=subnet,
        public_ip=value.get("PublicIP") or "",
        backend=value.get("BackendType") or "",
        vtep_mac=(data.get("VtepMAC") or "").lower() or None,
        key=key,
        ipv6_subnet=ipv6,
        public_ipv6=value.get("PublicIPv6") or None,
        backend_data=data,
        node=node,
    )


def read_subnet_env(host: testinfra.host.Host) -> dict[str, str]:
    """``/run/flannel/subnet.env`` of a host as a dict (empty when missing)."""
    env = host.file("/run/flannel/subnet.env")
    if not env.exists:
        return {}
    return parse_subnet_env(env.content_string)


def parse_subnet_env(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
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
