"""The flannel overlay: real flanneld when on PATH, else flannel's data model and plumbing.

Without flanneld the lab does what flanneld's vxlan backend does: writes the network
config and one lease per host (24 h etcd lease) under ``/coreos.com/network``, in flannel's
keys and formats (:mod:`stackcheck.flannel`, which the checks read with), creates
``flannel.1`` in each host, programs neighbours, FDB entries and routes to every other
host's subnet, and writes the host's ``/run/flannel/subnet.env``.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from stackcheck.flannel import model as flannel
from stackcheck.lab import DEFAULT_FLANNEL_PREFIX
from stackcheck_provisioners.base import ProvisionerError
from stackcheck_provisioners.hostlab import etcd
from stackcheck_provisioners.hostlab.layout import (
    FLANNEL_MTU,
    FLANNEL_NETWORK,
    VXLAN_PORT,
    HostPlan,
    Layout,
    tls_files,
)
from stackcheck_provisioners.hostlab.proc import run

if TYPE_CHECKING:
    from etcd3gw.client import Etcd3Client

PREFIX = DEFAULT_FLANNEL_PREFIX
LEASE_TTL = 24 * 3600
VNI = flannel.DEFAULT_VNI
NETWORK_CONFIG = flannel.vxlan_config(FLANNEL_NETWORK, vni=VNI, port=VXLAN_PORT)
PLUMBING = "stackcheck plumbing (no flanneld on PATH)"


def flanneld() -> str | None:
    return shutil.which("flanneld")


def kind() -> str:
    return "flanneld" if flanneld() else PLUMBING


def subnet_env(host: HostPlan, subnet: str | None = None) -> str:
    return flannel.subnet_env(FLANNEL_NETWORK, subnet or host.flannel_subnet, FLANNEL_MTU)


def create_vtep(host: HostPlan, subnet: str | None = None) -> str:
    """Create flannel.1 in the host and write its subnet.env; return its MAC."""
    ns = host.netns
    net = ipaddress.IPv4Network(subnet or host.flannel_subnet)
    batch = "\n".join([
        f"link add flannel.1 type vxlan id {VNI} local {host.address} dev eth0 "
        f"dstport {VXLAN_PORT} nolearning",
        f"link set flannel.1 mtu {FLANNEL_MTU}",
        f"addr add {net.network_address}/32 dev flannel.1",
        "link set flannel.1 up",
    ])
    run(["ip", "-n", ns, "-batch", "-"], input=batch + "\n")
    out = json.loads(run(["ip", "-n", ns, "-j", "link", "show", "flannel.1"]).stdout)
    env_dir = host.run_dir / "flannel"
    env_dir.mkdir(parents=True, exist_ok=True)
    (env_dir / "subnet.env").write_text(subnet_env(host, str(net)))
    return str(out[0]["address"])


def program_routes(host: HostPlan, peers: list[tuple[HostPlan, str]],
                   subnets: dict[str, str] | None = None) -> None:
    """Neighbour, FDB and route entries on ``host`` for every other host's subnet
    (``subnets``: host name -> subnet, when not the layout's)."""
    ip_lines, fdb_lines = [], []
    for peer, mac in peers:
        if peer.name == host.name:
            continue
        net = ipaddress.IPv4Network((subnets or {}).get(peer.name, peer.flannel_subnet))
        gw = net.network_address
        ip_lines.append(f"neigh replace {gw} lladdr {mac} dev flannel.1 nud permanent")
        ip_lines.append(f"route replace {net} via {gw} dev flannel.1 onlink")
        fdb_lines.append(f"fdb replace {mac} dev flannel.1 dst {peer.address} self permanent")
    if ip_lines:
        run(["ip", "-n", host.netns, "-batch", "-"], input="\n".join(ip_lines) + "\n")
        run(["bridge", "-n", host.netns, "-batch", "-"], input="\n".join(fdb_lines) + "\n")


#: etcd writes of the bring-up: each call's bound, and the tries (a loaded machine's etcd
#: can miss one deadline; the writes are idempotent)
WRITE_TIMEOUT = 10
WRITE_TRIES = 2


def write_model(layout: Layout, macs: dict[str, str]) -> None:
    """Write flannel's network config and one lease per host into etcd (flannel's format)."""
    from stackcheck.flannel import etcd_store  # here: the control CLI starts without it

    def write(cli: Etcd3Client) -> None:
        etcd_store.write_config(cli, PREFIX, NETWORK_CONFIG)
        lease = cli.lease(ttl=LEASE_TTL)
        for host in layout.hosts:
            attrs = flannel.lease_attrs(host.address, "vxlan",
                                        flannel.vxlan_backend_data(macs[host.name], VNI))
            etcd_store.write_lease(cli, PREFIX, host.flannel_subnet, attrs, lease=lease)

    _write_etcd(layout, "flannel's network config and leases", write)


def write_config(layout: Layout) -> None:
    """Only the network config (what an operator writes before starting flanneld)."""
    from stackcheck.flannel import etcd_store

    _write_etcd(layout, "flannel's network config",
                lambda cli: etcd_store.write_config(cli, PREFIX, NETWORK_CONFIG))


def _write_etcd(layout: Layout, what: str, write: Callable[[Etcd3Client], None]) -> None:
    """Run ``write`` against the first etcd member, retried once; a failure names what was
    written, where, and etcd's own reason."""
    from stackcheck.errors import etcd_error

    member = layout.etcd_hosts[0]
    for attempt in range(1, WRITE_TRIES + 1):
        try:
            write(etcd.client(layout, member, timeout=WRITE_TIMEOUT))
            return
        except Exception as exc:  # noqa: BLE001 - etcd3gw raises many types; all say why
            if attempt == WRITE_TRIES:
                raise ProvisionerError(
                    f"writing {what} into etcd on {member.name} failed after {WRITE_TRIES} "
                    f"tries of {WRITE_TIMEOUT} s: {etcd_error(exc)}") from None


def argv(layout: Layout, host: HostPlan) -> list[str]:
    """flanneld's command line, when the real one is used."""
    exe = flanneld()
    if exe is None:
        raise ProvisionerError("flanneld is not on PATH")
    files = tls_files(layout)
    return [
        exe,
        f"--etcd-endpoints={','.join(etcd.endpoints(layout))}",
        f"--etcd-cafile={files['ca']}",
        f"--etcd-certfile={files['cert']}",
        f"--etcd-keyfile={files['key']}",
        f"--etcd-prefix={PREFIX}",
        "--iface=eth0",
        "--ip-masq=false",
        "--subnet-file=/run/flannel/subnet.env",
    ]


def ready(layout: Layout, host: HostPlan) -> bool:
    return (host.run_dir / "flannel" / "subnet.env").exists()


def read_subnet(host: HostPlan, timeout: float = 30) -> str:
    """FLANNEL_SUBNET from the host's subnet.env (waiting for real flanneld to write it)."""
    path = host.run_dir / "flannel" / "subnet.env"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                if line.startswith("FLANNEL_SUBNET="):
                    return line.split("=", 1)[1].strip()
        time.sleep(0.1)
    raise ProvisionerError(f"{host.name}: flanneld wrote no {path} in {timeout:g}s")
