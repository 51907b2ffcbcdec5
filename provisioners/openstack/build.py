"""Creating a lab's resources, recording each id in the run state as soon as it exists."""

from __future__ import annotations

import base64
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import Progress

from stackcheck_provisioners.base import ProvisionerError

from . import userdata
from .cloud import resource_name, run_metadata, run_tags
from .spec import HostSpec, LabSpec
from .state import RunState

log = logging.getLogger(__name__)

FIRST_HOST_INDEX = 10  # hosts get .10, .11, ...; DHCP hands out from .50 on
POOL_START_INDEX = 50


@dataclass
class Waits:
    """Bounds of every wait; tests shrink them and pass a no-op sleep."""

    active_timeout: float = 900.0
    ssh_timeout: float = 600.0
    interval: float = 5.0
    probe_timeout: float = 3.0
    sleep: Callable[[float], None] = time.sleep


@dataclass
class BuiltHost:
    spec: HostSpec
    server_id: str = ""
    fixed_ip: str | None = None
    port_id: str = ""
    floating_ip: str | None = None

    @property
    def address(self) -> str:
        return self.floating_ip or self.fixed_ip or ""


@dataclass
class Builder:
    """One create() run: each step adds what it made to ``state`` before the next starts."""

    conn: Any
    spec: LabSpec
    state: RunState
    waits: Waits
    console: Console = field(default_factory=lambda: Console(stderr=True))
    step: str = "starting"

    @property
    def run_id(self) -> str:
        return self.state.run_id

    def _tag(self, proxy_obj: Any) -> None:
        self.conn.network.set_tags(proxy_obj, run_tags(self.run_id))

    def keypair(self, public_key: str) -> str:
        self.step = "keypair"
        name = resource_name(self.run_id, "key")
        self.conn.compute.create_keypair(name=name, public_key=public_key)
        self.state.add("keypair", name, name)
        return name

    def network(self, external: Any | None) -> tuple[str, str | None]:
        """A network, subnet and (with an external network) a router; returns (net, subnet)."""
        net_api, cidr = self.conn.network, ipaddress.ip_network(self.spec.network.cidr)
        self.step = "network"
        net = net_api.create_network(name=resource_name(self.run_id, "net"),
                                     description=f"stackcheck run {self.run_id}")
        self.state.add("network", net.id, net.name)
        self._tag(net)
        self.step = "subnet"
        subnet = net_api.create_subnet(
            name=resource_name(self.run_id, "subnet"), network_id=net.id, ip_version=4,
            cidr=str(cidr), gateway_ip=str(cidr[1]),
            allocation_pools=[{"start": str(cidr[POOL_START_INDEX]), "end": str(cidr[-2])}],
            dns_nameservers=self.spec.network.dns_nameservers,
        )
        self.state.add("subnet", subnet.id, subnet.name)
        self._tag(subnet)
        if external is not None:
            self.step = "router"
            router = net_api.create_router(name=resource_name(self.run_id, "router"),
                                           external_gateway_info={"network_id": external.id})
            self.state.add("router", router.id, router.name)
            self._tag(router)
            self.step = "router interface"
            net_api.add_interface_to_router(router, subnet.id)  # positional: kwarg renamed
            self.state.add("router_interface", subnet.id, f"{router.name} interface",
                           router_id=router.id)
        return net.id, subnet.id

    def security_group(self) -> str:
        self.step = "security group"
        net_api = self.conn.network
        group = net_api.create_security_group(name=resource_name(self.run_id, "sg"),
                                              description=f"stackcheck run {self.run_id}")
        self.state.add("security_group", group.id, group.name)
        self._tag(group)
        self.step = "security group rules"
        for rule in self.spec.security_rules():
            low, high = rule.port_range
            remote = ({"remote_group_id": group.id} if rule.remote == "group"
                      else {"remote_ip_prefix": rule.remote})
            net_api.create_security_group_rule(
                security_group_id=group.id, direction="ingress", ethertype="IPv4",
                protocol=rule.protocol, port_range_min=low, port_range_max=high, **remote,
            )
        return group.id

    def plan_addresses(self, hosts: list[BuiltHost], own_network: bool) -> None:
        """Fixed IPs up front, so etcd's initial cluster can go into user-data."""
        cidr = ipaddress.ip_network(self.spec.network.cidr)
        if own_network and len(hosts) > POOL_START_INDEX - FIRST_HOST_INDEX:
            raise ProvisionerError(f"lab spec: at most {POOL_START_INDEX - FIRST_HOST_INDEX} "
                                   f"hosts fit the address plan, got {len(hosts)}")
        for i, host in enumerate(hosts):
            host.fixed_ip = host.spec.fixed_ip or (
                str(cidr[FIRST_HOST_INDEX + i]) if own_network else None)

    def user_data(self, hosts: list[BuiltHost]) -> dict[str, str | None]:
        if self.spec.user_data == "none":
            return {h.spec.name: None for h in hosts}
        values = userdata.lab_values(
            [(h.spec.name, h.fixed_ip or "", h.spec.roles) for h in hosts],
            self.spec.flannel_network, cluster_token=f"sc-{self.run_id}",
        )
        return {h.spec.name: userdata.render(h.spec.roles, values[h.spec.name]) for h in hosts}

    def servers(self, hosts: list[BuiltHost], *, image: Any, flavor: Any, key_name: str,
                network_id: str, group_id: str) -> None:
        scripts = self.user_data(hosts)
        for host in hosts:
            self.step = f"server {host.spec.name}"
            nic = {"uuid": network_id}
            if host.fixed_ip:
                nic["fixed_ip"] = host.fixed_ip
            script = scripts[host.spec.name]
            extra = {"user_data": base64.b64encode(script.encode()).decode()} if script else {}
            server = self.conn.compute.create_server(
                name=resource_name(self.run_id, host.spec.name), image_id=image.id,
                flavor_id=flavor.id, key_name=key_name, networks=[nic],
                security_groups=[{"name": group_id}], metadata=run_metadata(self.run_id),
                **extra,
            )
            host.server_id = server.id
            self.state.add("server", server.id, server.name, host=host.spec.name)

    def _poll(self, what: str, pending: list[BuiltHost], check: Callable[[BuiltHost], bool],
              timeout: float, late: Callable[[list[BuiltHost]], str] | None = None) -> None:
        """Call ``check`` on each pending host until all pass; bounded by ``timeout``.

        ``late`` words the timeout from the hosts still pending.
        """
        waited, started = 0.0, time.monotonic()
        with Progress(console=self.console, transient=True) as progress:
            task = progress.add_task(what, total=len(pending))
            while True:
                pending = [h for h in pending if not check(h)]
                progress.update(task, completed=progress.tasks[0].total - len(pending))
                if not pending:
                    return
                if max(waited, time.monotonic() - started) >= timeout:
                    if late is not None:
                        raise ProvisionerError(f"openstack: {late(pending)}")
                    names = ", ".join(h.spec.name for h in pending)
                    raise ProvisionerError(f"openstack: timed out after {timeout:g}s waiting "
                                           f"for {what}: {names}")
                self.waits.sleep(self.waits.interval)
                waited += self.waits.interval

    def wait_active(self, hosts: list[BuiltHost]) -> None:
        self.step = "waiting for servers ACTIVE"

        errored: set[str] = set()

        def active(host: BuiltHost) -> bool:
            server = self.conn.compute.get_server(host.server_id)
            if server.status == "ERROR":
                fault = (server.fault or {}).get("message")
                if fault is None and host.server_id not in errored:
                    errored.add(host.server_id)  # nova saves the fault after the state
                    return False
                raise ProvisionerError(f"openstack: server {host.spec.name} went to ERROR: "
                                       f"{fault or 'no fault message'}")
            return server.status == "ACTIVE"

        self._poll("servers ACTIVE", list(hosts), active, self.waits.active_timeout)
        for host in hosts:
            port = next(iter(self.conn.network.ports(device_id=host.server_id)), None)
            if port is None or not port.fixed_ips:
                raise ProvisionerError(f"openstack: server {host.spec.name} has no port")
            host.port_id, host.fixed_ip = port.id, port.fixed_ips[0]["ip_address"]

    def floating_ips(self, hosts: list[BuiltHost], external: Any) -> None:
        for host in hosts:
            self.step = f"floating IP for {host.spec.name}"
            fip = self.conn.network.create_ip(
                floating_network_id=external.id, port_id=host.port_id,
                description=f"stackcheck run {self.run_id} {host.spec.name}",
            )
            self.state.add("floating_ip", fip.id, fip.floating_ip_address)
            self._tag(fip)
            host.floating_ip = fip.floating_ip_address

    def wait_ssh(self, hosts: list[BuiltHost], probe: Callable[[str, int, float], bool]) -> None:
        self.step = "waiting for SSH"
        timeout = self.waits.ssh_timeout

        def late(pending: list[BuiltHost]) -> str:
            where = ", ".join(f"{h.address} ({h.spec.name})" for h in pending)
            return (f"no SSH on {where} within {timeout:g} s "
                    "(nothing accepted a connection on port 22)")

        self._poll("SSH on port 22", list(hosts),
                   lambda h: probe(h.address, 22, self.waits.probe_timeout), timeout, late)

    def host_keys(self, hosts: list[BuiltHost],
                  keyscan: Callable[[str, int, float], list[str]]) -> list[tuple[str, list[str]]]:
        """Each host's SSH host keys (sshd may open its port before it can hand them out)."""
        self.step = "host keys"
        found: dict[str, list[str]] = {}

        def scanned(host: BuiltHost) -> bool:
            found[host.address] = keyscan(host.address, 22, self.waits.probe_timeout)
            return bool(found[host.address])

        self._poll("SSH host keys", list(hosts), scanned, self.waits.ssh_timeout)
        return [(h.address, found[h.address]) for h in hosts]
