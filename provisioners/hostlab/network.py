"""Hosts as network namespaces on a bridge in a lab-owned underlay namespace.

Root namespace changes are limited to ONE veth (``sc-<lab>``) with the gateway address
on the lab subnet: its connected route is the only route added. No default route,
firewall or DNS is touched, and hosts get no default route.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from pathlib import Path

from stackcheck_provisioners.base import ProvisionerError
from stackcheck_provisioners.hostlab import state
from stackcheck_provisioners.hostlab.layout import Layout
from stackcheck_provisioners.hostlab.proc import run

NETNS_DIR = Path("/run/netns")


def is_mountpoint(path: Path) -> bool:
    """True if ``path`` is a mount point in this mount namespace (bind mounts too)."""
    target = str(path)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" ")
        if len(fields) > 4 and fields[4] == target:
            return True
    return False


def netns_list() -> set[str]:
    """Names of all named network namespaces on the machine."""
    out = run(["ip", "-j", "netns", "list"], check=False).stdout.strip()
    try:
        return {entry["name"] for entry in json.loads(out or "[]")}
    except (json.JSONDecodeError, KeyError, TypeError):
        return {line.split()[0] for line in out.splitlines() if line.strip()}


def root_links() -> set[str]:
    """Interface names in the root namespace."""
    out = run(["ip", "-j", "link", "show"]).stdout
    return {link["ifname"] for link in json.loads(out or "[]")}


def preflight(layout: Layout) -> None:
    """Refuse to build if names are taken or the subnet overlaps a route of this machine."""
    taken = netns_list() & ({layout.underlay} | {h.netns for h in layout.hosts})
    if taken:
        raise ProvisionerError(
            f"network namespace(s) {', '.join(sorted(taken))} already exist and are not "
            f"recorded in {layout.state_dir}: another lab named {layout.name!r} runs here? "
            "(pick another name with option name=...)"
        )
    if layout.root_link in root_links():
        raise ProvisionerError(f"interface {layout.root_link} already exists in the root netns")
    routes = json.loads(run(["ip", "-j", "route", "show", "table", "all"]).stdout or "[]")
    for route in routes:
        dst = route.get("dst", "")
        if dst in ("default", "") or ":" in dst or route.get("table") == "local":
            continue
        try:
            net = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if net.overlaps(layout.subnet):
            raise ProvisionerError(
                f"subnet {layout.subnet} overlaps route {dst} of this machine "
                "(pick another with option subnet=...)"
            )


def create(layout: Layout) -> None:
    """Create the underlay, every host namespace and the veths; record each first."""
    sd = layout.state_dir
    if not is_mountpoint(NETNS_DIR):
        state.add_resource(sd, "netns_dir", str(NETNS_DIR))
    u = layout.underlay
    state.add_resource(sd, "netns", u)
    run(["ip", "netns", "add", u])
    _record_inode(sd, u)
    run(["ip", "-n", u, "link", "set", "lo", "up"])
    run(["ip", "-n", u, "link", "add", "br0", "type", "bridge"])
    run(["ip", "-n", u, "link", "set", "br0", "up"])
    for host in layout.hosts:
        state.add_resource(sd, "netns", host.netns, host=host.name)
        run(["ip", "netns", "add", host.netns])
        _record_inode(sd, host.netns)
        batch = "\n".join([
            f"link add {host.name} type veth peer name eth0 netns {host.netns}",
            f"link set {host.name} master br0",
            f"link set {host.name} up",
        ])
        run(["ip", "-n", u, "-batch", "-"], input=batch + "\n")
        batch = "\n".join([
            "link set lo up",
            f"addr add {host.address}/{layout.prefix} dev eth0",
            "link set eth0 up",
        ])
        run(["ip", "-n", host.netns, "-batch", "-"], input=batch + "\n")
        run(["ip", "netns", "exec", host.netns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    link = layout.root_link
    state.add_resource(sd, "link", link)
    run(["ip", "link", "add", link, "type", "veth", "peer", "name", "up0", "netns", u])
    run(["ip", "-n", u, "link", "set", "up0", "master", "br0"])
    run(["ip", "-n", u, "link", "set", "up0", "up"])
    run(["ip", "addr", "add", f"{layout.gateway}/{layout.prefix}", "dev", link])
    run(["ip", "link", "set", link, "up"])
    pin_neighbours(layout)


def pin_neighbours(layout: Layout) -> None:
    """Permanent underlay neighbours (each peer's eth0 MAC) in every host namespace.

    The kernel's ARP table is one for all namespaces, its garbage-collection thresholds
    machine-wide (gc_thresh3 1024 by default): a 48-host lab doing all-pairs traffic needs
    48 x 47 dynamic entries, overflows it ("neighbor table overflow") and drops packets of
    a healthy data path. Permanent entries do not count against the thresholds; a real
    lab has one kernel, and one table, per host.
    """
    macs = {h.name: run(["ip", "netns", "exec", h.netns, "cat",
                         "/sys/class/net/eth0/address"]).stdout.strip() for h in layout.hosts}
    for host in layout.hosts:
        lines = [f"neigh replace {peer.address} lladdr {macs[peer.name]} dev eth0 nud permanent"
                 for peer in layout.hosts if peer.name != host.name]
        if lines:
            run(["ip", "-n", host.netns, "-batch", "-"], input="\n".join(lines) + "\n")


def netns_inode(name: str) -> int | None:
    """The identity (nsfs inode) of a named netns, or None if it does not exist."""
    try:
        return os.stat(NETNS_DIR / name).st_ino
    except OSError:
        return None


def _record_inode(state_dir: Path, name: str) -> None:
    with state.edit(state_dir) as st:
        for rec in st.get("resources", []):
            if rec.get("kind") == "netns" and rec.get("name") == name:
                rec["inode"] = netns_inode(name)


def delete_link(name: str) -> None:
    if name in root_links():
        run(["ip", "link", "del", name], check=False)


def delete_netns(name: str) -> None:
    if name in netns_list():
        run(["ip", "netns", "del", name], check=False)


def netns_pids(name: str) -> set[int]:
    """PIDs of processes inside a named network namespace."""
    if name not in netns_list():
        return set()
    out = run(["ip", "netns", "pids", name], check=False).stdout
    return {int(x) for x in out.split() if x.isdigit()}


def cleanup_netns_dir() -> None:
    """Unmount /run/netns if the lab made it a mount point and no namespace is left."""
    if not NETNS_DIR.is_dir() or any(NETNS_DIR.iterdir()):
        return
    for _ in range(4):
        if not is_mountpoint(NETNS_DIR):
            break
        run(["umount", str(NETNS_DIR)], check=False)
    with contextlib.suppress(OSError):
        NETNS_DIR.rmdir()
