"""The openstack provisioner against a fake cloud: requests-mock behind a real Connection.

Like openstacksdk's own unit tests, no OpenStack runs: Keystone, Nova, Neutron and Glance
are answered by requests-mock with response bodies shaped like the real API's
(``tests/data/openstack``). The fake keeps state, so ids flow from create to delete, and it
refuses deletes a real cloud would refuse (a network with ports, a router with interfaces).
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import openstack
import pytest
import requests_mock
import yaml
from click.testing import CliRunner

from stackcheck.lab import load_inventory
from stackcheck_provisioners.base import ProvisionConfig, ProvisionerError
from stackcheck_provisioners.openstack import OpenStackProvisioner, cleanup
from stackcheck_provisioners.openstack.build import Waits
from stackcheck_provisioners.openstack.cli import cleanup_command, parse_age
from stackcheck_provisioners.openstack.spec import load_spec
from stackcheck_provisioners.openstack.state import STATE_FILE
from stackcheck_provisioners.openstack.teardown import Deleter

DATA = Path(__file__).parent / "data" / "openstack"
PASSWORD = "Pa55-w0rd-n3ver-logged"
TOKEN = "gAAAAABsecret-token-n3ver-logged"
RUN = "20240101-120000-abc123"
OLD_RUN = "20231201-080000-0ld0ld"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
NOW = datetime.now(UTC)


def body(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def stamp(age: timedelta) -> str:
    return (NOW - age).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    return str(uuid.uuid4())


# --- the fake cloud -----------------------------------------------------------------------

NEUTRON_KEYS = {"networks": "network", "subnets": "subnet", "routers": "router",
                "security-groups": "security_group", "floatingips": "floatingip",
                "ports": "port", "security-group-rules": "security_group_rule"}
TEMPLATES = {"networks": "network.json", "subnets": "subnet.json", "routers": "router.json",
             "security-groups": "security-group.json", "floatingips": "floating-ip.json",
             "ports": "port.json", "security-group-rules": "security-group-rule.json"}


class Reply(Exception):
    """Raised inside a handler to answer with an error status."""

    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(status)
        self.status, self.payload = status, payload


def neutron_error(status: int, kind: str, message: str) -> Reply:
    return Reply(status, {"NeutronError": {"type": kind, "message": message, "detail": ""}})


def nova_error(status: int, message: str) -> Reply:
    key = {404: "itemNotFound", 409: "conflictingRequest"}.get(status, "computeFault")
    return Reply(status, {key: {"code": status, "message": message}})


class FakeCloud:
    """Keystone, Nova, Neutron and Glance for one project, with state and injectable faults."""

    def __init__(self, mocker: requests_mock.Mocker) -> None:
        self.neutron: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in NEUTRON_KEYS}
        self.servers: dict[str, dict[str, Any]] = {}
        self.keypairs: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.deleting: set[str] = set()
        self.limits = body("limits.json")
        self.net_quota = body("network-quota-details.json")
        self.faults: dict[tuple[str, str], list[int]] = {}
        self.fip_numbers = itertools.count(10)
        flavor = body("flavor.json")["flavor"]
        self.flavors = {flavor["id"]: flavor}
        image = self._image("Fedora-Atomic-27")
        self.images = {image["id"]: image}
        self.external = self.add("networks", name="public", **{"router:external": True})
        self.mocker = mocker
        self._register(mocker)

    # seeding and inspection

    def add(self, coll: str, **fields: Any) -> dict[str, Any]:
        item = copy.deepcopy(body(TEMPLATES[coll])[NEUTRON_KEYS[coll]])
        item.update(id=new_id(), **fields)
        if "name" in item or coll != "floatingips":  # floating IPs have no name
            item.setdefault("name", "")
        self.neutron[coll][item["id"]] = item
        if coll == "networks":
            item.setdefault("subnets", [])
        return item

    def add_server(self, name: str, metadata: dict[str, str], age: timedelta) -> dict[str, Any]:
        server = copy.deepcopy(body("server.json")["server"])
        server.update(id=new_id(), name=name, metadata=metadata, status="ACTIVE",
                      created=stamp(age))
        self.servers[server["id"]] = server
        return server

    def add_keypair(self, name: str, age: timedelta) -> dict[str, Any]:
        keypair = copy.deepcopy(body("keypair.json")["keypair"])
        keypair.update(name=name, public_key=HOST_KEY,
                       created_at=(NOW - age).strftime("%Y-%m-%dT%H:%M:%S.000000"))
        self.keypairs[name] = keypair
        return keypair

    def _image(self, name: str) -> dict[str, Any]:
        image = body("image.json")
        image_id = new_id()
        image.update(id=image_id, name=name, file=f"/v2/images/{image_id}/file",
                     self=f"/v2/images/{image_id}")
        return image

    def fail(self, method: str, what: str, *statuses: int) -> None:
        """The next calls ``method what`` (e.g. POST servers) answer with ``statuses``."""
        self.faults[(method, what)] = list(statuses)

    def calls(self, method: str | None = None) -> list[str]:
        """``METHOD path`` of every API call so far (auth and discovery left out)."""
        out = []
        for req in self.mocker.request_history:
            url = urlsplit(req.url)
            if url.hostname == "identity.example.test" or url.path.rstrip("/") in (
                    "", "/v2.1"):
                continue
            if method is None or req.method == method:
                out.append(f"{req.method} {url.path}")
        return out

    def all_ids(self) -> set[str]:
        ids = {i for table in self.neutron.values() for i in table}
        return ids | set(self.servers) | set(self.keypairs)

    # routing

    def _register(self, m: requests_mock.Mocker) -> None:
        m.get("https://identity.example.test/", json=body("identity-discovery.json"),
              status_code=300)
        m.post("https://identity.example.test/v3/auth/tokens", json=body("token-v3.json"),
               status_code=201, headers={"X-Subject-Token": TOKEN})
        m.get(re.compile(r"^https://compute\.example\.test/v2\.1/?$"),
              json=body("compute-version.json"))
        m.get("https://network.example.test/", json=body("network-versions.json"))
        m.get("https://image.example.test/", json=body("image-versions.json"), status_code=300)
        for pattern, handler in (
            (r"^https://compute\.example\.test/v2\.1/.+", self._nova),
            (r"^https://network\.example\.test/v2\.0/.+", self._neutron),
            (r"^https://image\.example\.test/v2/.+", self._glance),
        ):
            m.register_uri(requests_mock.ANY, re.compile(pattern),
                           text=self._wrap(handler))

    def _wrap(self, handler: Any) -> Any:
        def respond(req: Any, ctx: Any) -> str:
            url = urlsplit(req.url)
            parts = [p.removesuffix(".json") for p in url.path.split("/")[2:] if p]
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            fault = self.faults.get((req.method, parts[0] if parts else ""))
            try:
                if fault:
                    status = fault.pop(0)
                    raise neutron_error(status, "Fault", f"injected {status}") \
                        if "network" in url.hostname else nova_error(status, f"injected {status}")
                payload = req.json() if req.body else {}
                status, result = handler(req.method, parts, query, payload)
            except Reply as reply:
                status, result = reply.status, reply.payload
            ctx.status_code = status
            ctx.headers["Content-Type"] = "application/json"
            return "" if result is None else json.dumps(result)
        return respond

    # Glance

    def _glance(self, method: str, parts: list[str], query: dict[str, str],
                payload: dict[str, Any]) -> tuple[int, Any]:
        if parts == ["images"]:
            found = [i for i in self.images.values() if query.get("name") in (None, i["name"])]
            return 200, {"images": found, "schema": "/v2/schemas/images",
                         "first": "/v2/images"}
        if len(parts) == 2 and parts[1] in self.images:
            return 200, self.images[parts[1]]
        raise Reply(404, {"message": "404 Not Found: no image", "code": "404 Not Found"})

    # Nova

    def _nova(self, method: str, parts: list[str], query: dict[str, str],
              payload: dict[str, Any]) -> tuple[int, Any]:
        head, rest = parts[0], parts[1:]
        if head == "limits":
            return 200, self.limits
        if head == "flavors":
            if rest == ["detail"]:
                return 200, {"flavors": list(self.flavors.values())}
            if rest and rest[0] in self.flavors:
                return 200, {"flavor": self.flavors[rest[0]]}
            raise nova_error(404, f"Flavor {rest[0]} could not be found.")
        if head == "os-keypairs":
            return self._keypairs(method, rest, payload)
        if head == "servers":
            return self._servers(method, rest, payload)
        raise nova_error(404, f"no route {method} {parts}")

    def _keypairs(self, method: str, rest: list[str], payload: dict[str, Any]) -> Any:
        if method == "POST":
            spec = payload["keypair"]
            if spec["name"] in self.keypairs:
                raise nova_error(409, f"Key pair '{spec['name']}' already exists.")
            keypair = self.add_keypair(spec["name"], timedelta(0))
            keypair["public_key"] = spec["public_key"]
            return 200, {"keypair": keypair}
        if not rest or rest[0] not in self.keypairs:
            raise nova_error(404, f"Keypair {rest} not found for user")
        if method == "DELETE":
            del self.keypairs[rest[0]]
            return 202, None
        return 200, {"keypair": self.keypairs[rest[0]]}

    def _servers(self, method: str, rest: list[str], payload: dict[str, Any]) -> Any:
        if method == "POST" and not rest:
            return 202, {"server": self._boot(payload["server"])}
        if rest == ["detail"]:
            return 200, {"servers": list(self.servers.values())}
        if not rest or rest[0] not in self.servers:
            raise nova_error(404, f"Instance {rest} could not be found.")
        server_id = rest[0]
        if method == "DELETE":
            self.deleting.add(server_id)
            return 204, None
        if server_id in self.deleting:  # one more look at it, then it is gone
            server = self.servers.pop(server_id)
            for port in [p for p in self.neutron["ports"].values()
                         if p["device_id"] == server_id]:
                del self.neutron["ports"][port["id"]]
            return 200, {"server": {**server, "OS-EXT-STS:task_state": "deleting"}}
        self.polls[server_id] = self.polls.get(server_id, 0) + 1
        if self.polls[server_id] >= 2:
            self.servers[server_id]["status"] = "ACTIVE"
        return 200, {"server": self.servers[server_id]}

    def _boot(self, spec: dict[str, Any]) -> dict[str, Any]:
        if spec["imageRef"] not in self.images:
            raise nova_error(400, f"Image {spec['imageRef']} could not be found.")
        nic = spec["networks"][0]
        network = self.neutron["networks"][nic["uuid"]]
        subnet_id = network["subnets"][0] if network["subnets"] else None
        server = self.add_server(spec["name"], spec.get("metadata", {}), timedelta(0))
        server.update(status="BUILD", key_name=spec.get("key_name"),
                      image={"id": spec["imageRef"], "links": []},
                      security_groups=spec.get("security_groups", []),
                      **{"OS-EXT-SRV-ATTR:user_data": spec.get("user_data")})
        fixed_ip = nic.get("fixed_ip") or f"10.42.0.{50 + len(self.servers)}"
        port = self.add("ports", device_id=server["id"], device_owner="compute:nova",
                        network_id=network["id"],
                        security_groups=[g["name"] for g in spec.get("security_groups", [])],
                        fixed_ips=[{"subnet_id": subnet_id, "ip_address": fixed_ip}])
        server["addresses"] = {network["name"]: [
            {"version": 4, "addr": fixed_ip, "OS-EXT-IPS:type": "fixed",
             "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]}]}
        reply = copy.deepcopy(body("server-create.json")["server"])
        reply["id"] = server["id"]
        return reply

    # Neutron

    def _neutron(self, method: str, parts: list[str], query: dict[str, str],
                 payload: dict[str, Any]) -> tuple[int, Any]:
        coll, rest = parts[0], parts[1:]
        if coll == "quotas":
            return 200, self.net_quota
        if coll not in NEUTRON_KEYS:
            raise neutron_error(404, "NotFound", f"no route {method} {parts}")
        key, table = NEUTRON_KEYS[coll], self.neutron[coll]
        if not rest:
            if method == "POST":
                return 201, {key: self._create(coll, payload[key])}
            items = [i for i in table.values() if self._matches(i, query)]
            return 200, {key.replace("floatingip", "floatingip") + "s": items}
        item = table.get(rest[0])
        if item is None:
            raise neutron_error(404, f"{key.title()}NotFound",
                                f"{key} {rest[0]} could not be found.")
        if rest[1:] == ["tags"] and method == "PUT":
            item["tags"] = payload["tags"]
            return 200, {"tags": item["tags"]}
        if coll == "routers" and rest[1:] in (["add_router_interface"],
                                              ["remove_router_interface"]):
            return 200, self._interface(item, rest[1], payload)
        if method == "DELETE":
            self._delete(coll, item)
            return 204, None
        return 200, {key: item}

    @staticmethod
    def _matches(item: dict[str, Any], query: dict[str, str]) -> bool:
        for name, value in query.items():
            if name == "tags":
                if not set(value.split(",")) <= set(item.get("tags", [])):
                    return False
            elif name in item and str(item[name]) != value:
                return False
        return True

    def _create(self, coll: str, spec: dict[str, Any]) -> dict[str, Any]:
        spec = dict(spec)
        if coll == "subnets":
            self.neutron["networks"][spec["network_id"]]["subnets"].append("pending")
        if coll == "floatingips":
            spec["floating_ip_address"] = f"203.0.113.{next(self.fip_numbers)}"
            spec["status"] = "ACTIVE"
        item = self.add(coll, **spec)
        if coll == "subnets":
            subnets = self.neutron["networks"][spec["network_id"]]["subnets"]
            subnets[subnets.index("pending")] = item["id"]
        return item

    def _interface(self, router: dict[str, Any], action: str,
                   payload: dict[str, Any]) -> dict[str, Any]:
        ports = self.neutron["ports"]
        if action == "add_router_interface":
            subnet = self.neutron["subnets"][payload["subnet_id"]]
            port = self.add("ports", device_id=router["id"],
                            device_owner="network:router_interface",
                            network_id=subnet["network_id"],
                            fixed_ips=[{"subnet_id": subnet["id"],
                                        "ip_address": subnet["gateway_ip"]}])
            return {"id": router["id"], "subnet_id": subnet["id"], "port_id": port["id"]}
        found = [p for p in ports.values() if p["device_id"] == router["id"] and (
            p["id"] == payload.get("port_id")
            or any(ip["subnet_id"] == payload.get("subnet_id") for ip in p["fixed_ips"]))]
        if not found:
            raise neutron_error(404, "RouterInterfaceNotFoundForSubnet",
                                f"Router {router['id']} has no interface on {payload}")
        del ports[found[0]["id"]]
        return {"id": router["id"], "port_id": found[0]["id"]}

    def _delete(self, coll: str, item: dict[str, Any]) -> None:
        ports = self.neutron["ports"].values()
        in_use = {
            "networks": any(p["network_id"] == item["id"] for p in ports),
            "subnets": any(ip["subnet_id"] == item["id"] for p in ports for ip in p["fixed_ips"]),
            "routers": any(p["device_id"] == item["id"] for p in ports),
            "security-groups": any(item["id"] in p.get("security_groups", []) for p in ports),
        }.get(coll, False)
        if in_use:
            raise neutron_error(409, "InUse", f"{NEUTRON_KEYS[coll]} {item['id']} is in use")
        del self.neutron[coll][item["id"]]
        if coll == "networks":
            for subnet_id in item["subnets"]:
                self.neutron["subnets"].pop(subnet_id, None)
        if coll == "security-groups":
            rules = self.neutron["security-group-rules"]
            for rule in [r for r in rules.values() if r["security_group_id"] == item["id"]]:
                del rules[rule["id"]]
        if coll == "subnets":
            network = self.neutron["networks"].get(item["network_id"])
            if network:
                network["subnets"].remove(item["id"])


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def cloud() -> Any:
    with requests_mock.Mocker() as mocker:
        yield FakeCloud(mocker)


@pytest.fixture
def conn(cloud: FakeCloud) -> openstack.connection.Connection:
    """A real Connection from an in-memory cloud config; requests-mock answers every call."""
    region = openstack.config.get_cloud_region(
        load_yaml_config=False, load_envvars=False, auth_type="password",
        auth={"auth_url": "https://identity.example.test/", "username": "lab-user",
              "password": PASSWORD, "project_name": "lab-project",
              "user_domain_name": "Default", "project_domain_name": "Default"},
        region_name="RegionOne",
    )
    return openstack.connection.Connection(config=region)


SPEC = {
    "cloud": "fakecloud",
    "image": "Fedora-Atomic-27",
    "flavor": "m1.medium",
    "ssh_user": "fedora",
    "floating_ips": True,
    "admin_cidr": "198.51.100.7/32",
    "network": {"cidr": "10.42.0.0/24", "external": "public"},
    "hosts": [
        {"name": "m", "roles": ["etcd", "master", "flannel", "docker"]},
        {"name": "n", "count": 2, "roles": ["etcd", "node", "flannel", "docker"]},
    ],
}


@pytest.fixture
def config(tmp_path: Path) -> ProvisionConfig:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    return ProvisionConfig(run_id=RUN, state_dir=tmp_path / "state", options={"spec": str(spec)})


def write_spec(config: ProvisionConfig, drop: tuple[str, ...] = (), **changes: Any) -> None:
    spec = {k: v for k, v in {**SPEC, **changes}.items() if k not in drop}
    Path(config.options["spec"]).write_text(yaml.safe_dump(spec))


@pytest.fixture
def probed() -> list[str]:
    return []


@pytest.fixture
def provisioner(conn: openstack.connection.Connection, probed: list[str]) -> OpenStackProvisioner:
    def connect(name: str) -> openstack.connection.Connection:
        assert name == "fakecloud"
        return conn

    def probe(address: str, port: int, timeout: float) -> bool:
        probed.append(address)
        return probed.count(address) > 1  # refused once, then open

    return OpenStackProvisioner(
        connect=connect, probe=probe, keyscan=lambda address, port, timeout: [HOST_KEY],
        waits=Waits(active_timeout=30, ssh_timeout=30, interval=1, sleep=lambda _s: None),
        delete_attempts=3,
    )


@pytest.fixture
def squatters(cloud: FakeCloud) -> set[str]:
    """Resources of someone else that carry the names this run will use."""
    network = cloud.add("networks", name=f"sc-{RUN}-net")
    group = cloud.add("security-groups", name=f"sc-{RUN}-sg")
    server = cloud.add_server(f"sc-{RUN}-m", {}, timedelta(days=1))
    keypair = cloud.add_keypair(f"sc-{RUN}-key-2", timedelta(days=1))
    return {network["id"], group["id"], server["id"], keypair["name"]}


def recorded(config: ProvisionConfig) -> dict[str, list[dict[str, Any]]]:
    state = json.loads((config.state_dir / STATE_FILE).read_text())
    out: dict[str, list[dict[str, Any]]] = {}
    for res in state["resources"]:
        out.setdefault(res["kind"], []).append(res)
    return out


# --- create -------------------------------------------------------------------------------


def test_create_writes_an_inventory_the_existing_provisioner_reads(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud
) -> None:
    lab = provisioner.create(config)

    loaded = load_inventory(config.state_dir / "inventory.yaml")
    assert [(h.name, h.roles) for h in loaded.hosts] == [
        ("m", ["etcd", "master", "flannel", "docker"]),
        ("n1", ["etcd", "node", "flannel", "docker"]),
        ("n2", ["etcd", "node", "flannel", "docker"]),
    ]
    addresses = [h.address for h in loaded.hosts]
    assert all(a.startswith("203.0.113.") for a in addresses), "floating IPs are the addresses"
    assert loaded.provisioner == "openstack" and loaded.run_id == RUN
    assert lab.owned and not loaded.owned, "owned is not written to the inventory"
    assert loaded.ssh.user == "fedora"
    assert loaded.ssh.identity_file == config.state_dir / "id_ed25519"
    assert (config.state_dir / "id_ed25519").stat().st_mode & 0o777 == 0o600
    assert loaded.etcd is not None
    assert loaded.etcd.endpoints == [f"http://{a}:2379" for a in addresses]
    known = (config.state_dir / "known_hosts").read_text().splitlines()
    assert known == [f"{a} {HOST_KEY}" for a in addresses]


def test_every_resource_is_recorded_named_and_tagged_with_the_run(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud
) -> None:
    provisioner.create(config)

    kinds = recorded(config)
    assert {k: len(v) for k, v in kinds.items()} == {
        "keypair": 1, "network": 1, "subnet": 1, "router": 1, "router_interface": 1,
        "security_group": 1, "server": 3, "floating_ip": 3,
    }
    tags = ["stackcheck", f"stackcheck-run={RUN}"]
    for kind, coll in (("network", "networks"), ("subnet", "subnets"), ("router", "routers"),
                       ("security_group", "security-groups"), ("floating_ip", "floatingips")):
        for res in kinds[kind]:
            assert cloud.neutron[coll][res["id"]]["tags"] == tags, kind
    for res in kinds["server"]:
        server = cloud.servers[res["id"]]
        assert server["name"] == f"sc-{RUN}-{res['extra']['host']}"
        assert server["metadata"] == {"stackcheck": "1", "stackcheck-run": RUN}
    assert cloud.neutron["networks"][kinds["network"][0]["id"]]["name"] == f"sc-{RUN}-net"
    assert kinds["keypair"][0]["id"] == f"sc-{RUN}-key"


def test_user_data_bootstraps_etcd_with_the_planned_addresses(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud
) -> None:
    provisioner.create(config)

    first = next(s for s in cloud.servers.values() if s["name"].endswith("-m"))
    script = base64.b64decode(first["OS-EXT-SRV-ATTR:user_data"]).decode()
    assert script.startswith("#cloud-config\n")
    document = yaml.safe_load(script)
    etcd_conf = next(f["content"] for f in document["write_files"]
                     if f["path"] == "/etc/etcd/etcd.conf")
    assert ("ETCD_INITIAL_CLUSTER=m=http://10.42.0.10:2380,n1=http://10.42.0.11:2380,"
            "n2=http://10.42.0.12:2380") in etcd_conf
    assert ["systemctl", "enable", "--now", "kube-apiserver", "kube-controller-manager",
            "kube-scheduler"] in document["runcmd"]


def test_no_user_data_for_a_lab_image(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud
) -> None:
    write_spec(config, user_data="none")
    provisioner.create(config)
    assert all(s["OS-EXT-SRV-ATTR:user_data"] is None for s in cloud.servers.values())


def test_security_group_opens_the_lab_ports(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud
) -> None:
    provisioner.create(config)

    group_id = recorded(config)["security_group"][0]["id"]
    rules = {(r["protocol"], r["port_range_min"], r["port_range_max"],
              "group" if r["remote_group_id"] == group_id else r["remote_ip_prefix"])
             for r in cloud.neutron["security-group-rules"].values()}
    assert {("tcp", 22, 22, "198.51.100.7/32"), ("tcp", 6443, 6443, "198.51.100.7/32"),
            ("tcp", 2379, 2379, "198.51.100.7/32"), ("icmp", None, None, "0.0.0.0/0"),
            ("tcp", 2379, 2380, "group"), ("udp", 8472, 8472, "group"),
            ("tcp", 10250, 10250, "group")} <= rules
    assert all(r["security_group_id"] == group_id
               for r in cloud.neutron["security-group-rules"].values())


def test_existing_network_without_floating_ips_uses_fixed_addresses(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud
) -> None:
    shared = cloud.add("networks", name="lab-shared")
    write_spec(config, drop=("hosts",), floating_ips=False, user_data="none",
               network={"existing": "lab-shared"})

    lab = provisioner.create(config)

    assert [h.name for h in lab.hosts] == ["h1", "h2", "h3"], "config.hosts hosts by default"
    assert lab.hosts[0].roles == ["etcd", "flannel", "docker", "node", "master"]
    assert all(h.address.startswith("10.42.0.") for h in lab.hosts)
    assert set(recorded(config)) == {"keypair", "security_group", "server"}
    assert all(p["network_id"] == shared["id"] for p in cloud.neutron["ports"].values())
    provisioner.destroy(lab)
    assert shared["id"] in cloud.neutron["networks"], "a network the run did not make stays"


def test_host_keys_are_polled_until_sshd_hands_them_out(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud
) -> None:
    scans: list[str] = []

    def slow_sshd(address: str, port: int, timeout: float) -> list[str]:
        scans.append(address)
        return [HOST_KEY] if scans.count(address) > 2 else []

    provisioner.keyscan = slow_sshd
    provisioner.create(config)
    assert len(scans) == 9


def test_a_second_create_refuses_to_forget_a_running_lab(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud
) -> None:
    provisioner.create(config)
    posts = len(cloud.calls("POST"))
    with pytest.raises(ProvisionerError, match=r"still lists 12 resource\(s\) of run .*"
                                               r"tear that lab down first"):
        provisioner.create(ProvisionConfig(run_id="20240102-000000-def456",
                                           state_dir=config.state_dir, options=config.options))
    assert len(cloud.calls("POST")) == posts
    assert len(recorded(config)["server"]) == 3


# --- teardown -----------------------------------------------------------------------------


def test_destroy_deletes_exactly_what_the_run_created_in_order(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud,
    squatters: set[str],
) -> None:
    before = cloud.all_ids()
    lab = provisioner.create(config)
    ids = {r["id"] for rs in recorded(config).values() for r in rs
           if r["kind"] != "router_interface"}
    cloud.mocker.reset_mock()

    provisioner.destroy(lab)

    deletes = cloud.calls("DELETE")
    assert sorted(path.rsplit("/", 1)[1] for path in deletes) == sorted(ids), \
        "every recorded resource deleted once by id, nothing else"
    assert squatters <= cloud.all_ids(), "same-name resources of others are left alone"
    assert cloud.all_ids() == before
    order = [path.split("/")[2] for path in deletes]
    first = {kind: order.index(kind) for kind in order}
    assert (first["floatingips"] < first["servers"] < first["routers"] < first["subnets"]
            < first["networks"] < first["security-groups"] < first["os-keypairs"])
    calls = cloud.calls()
    interface = next(i for i, c in enumerate(calls) if c.endswith("/remove_router_interface"))
    router = next(i for i, c in enumerate(calls) if c.startswith("DELETE /v2.0/routers/"))
    servers_gone = max(i for i, c in enumerate(calls) if c.startswith("GET /v2.1/servers/"))
    assert servers_gone < interface < router, "servers gone, then interface, then router"
    assert not (config.state_dir / STATE_FILE).exists()


def test_destroy_retries_conflicts_and_server_errors(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud
) -> None:
    before = cloud.all_ids()
    lab = provisioner.create(config)
    cloud.fail("DELETE", "networks", 409)
    cloud.fail("DELETE", "security-groups", 503, 500)
    cloud.mocker.reset_mock()

    provisioner.destroy(lab)

    assert cloud.all_ids() == before
    assert len([c for c in cloud.calls("DELETE") if "/security-groups/" in c]) == 3


def test_destroy_gives_up_after_bounded_retries_and_keeps_the_leftovers_listed(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud
) -> None:
    lab = provisioner.create(config)
    cloud.fail("DELETE", "security-groups", 503, 503, 503)

    with pytest.raises(ProvisionerError, match=r"1 resource\(s\) of run .* not deleted.*"
                                               r"security_group sc-.*-sg: HTTP 503"):
        provisioner.destroy(lab)
    assert [r["kind"] for rs in recorded(config).values() for r in rs] == ["security_group"]


def test_failure_halfway_deletes_everything_created_so_far(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud,
    squatters: set[str],
) -> None:
    before = cloud.all_ids()
    original = cloud._boot
    booted: list[str] = []

    def boot_then_fail(spec: dict[str, Any]) -> dict[str, Any]:
        if booted:
            raise nova_error(500, "Unexpected API Error.")
        booted.append(spec["name"])
        return original(spec)

    cloud._boot = boot_then_fail  # type: ignore[method-assign]

    with pytest.raises(ProvisionerError) as failed:
        provisioner.create(config)

    message = str(failed.value)
    assert message.startswith("openstack: server n1 failed: HTTP 500")
    assert "deleted the 7 resource(s) created so far" in message
    assert "\n" not in message
    assert cloud.all_ids() == before, "nothing of the run is left"
    assert squatters <= cloud.all_ids()
    assert any(c.startswith("DELETE /v2.1/servers/") for c in cloud.calls())


def test_no_ssh_is_one_line_naming_each_address_and_the_wait(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud,
) -> None:
    provisioner.probe = lambda address, port, timeout: False
    config.options["ssh_timeout"] = "7"
    before = cloud.all_ids()

    with pytest.raises(ProvisionerError) as failed:
        provisioner.create(config)

    message = str(failed.value)
    assert re.match(r"openstack: no SSH on [\d.]+ \(m\), [\d.]+ \(n1\), [\d.]+ \(n2\) "
                    r"within 7 s \(nothing accepted a connection on port 22\); deleted the "
                    r"\d+ resource\(s\) created so far$", message), message
    assert cloud.all_ids() == before


def test_keep_on_failure_keeps_the_recorded_resources_for_lab_down(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud,
) -> None:
    provisioner.probe = lambda address, port, timeout: False
    config.options.update(ssh_timeout="2", keep_on_failure="true")
    before = cloud.all_ids()

    with pytest.raises(ProvisionerError) as failed:
        provisioner.create(config)

    assert "(keep_on_failure): 'stackcheck lab down' deletes them" in str(failed.value)
    kept = recorded(config)
    assert len(kept["server"]) == 3 and cloud.all_ids() > before
    provisioner.abort(config)
    assert cloud.all_ids() == before
    assert not (config.state_dir / STATE_FILE).exists()


def test_a_wait_option_that_is_not_seconds_is_refused(
    provisioner: OpenStackProvisioner, config: ProvisionConfig,
) -> None:
    config.options["ssh_timeout"] = "ten"
    with pytest.raises(ProvisionerError,
                       match=r"openstack: option ssh_timeout='ten': expected a number"):
        provisioner.create(config)
    assert not (config.state_dir / STATE_FILE).exists()


def test_a_server_in_error_is_reported_with_the_fault_nova_saves_after_the_state(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud,
) -> None:
    original = cloud._servers
    looks: list[str] = []

    def error_then_fault(method: str, rest: list[str], payload: dict[str, Any]) -> Any:
        status, reply = original(method, rest, payload)
        if method == "GET" and rest and rest[0] in cloud.servers and "server" in reply:
            looks.append(rest[0])  # ERROR first without, then with the fault (as Zed does)
            reply["server"].update(status="ERROR", fault=None)
            if looks.count(rest[0]) > 1:
                reply["server"]["fault"] = {"code": 500, "message": "No valid host was found."}
        return status, reply

    cloud._servers = error_then_fault  # type: ignore[method-assign]
    with pytest.raises(ProvisionerError) as failed:
        provisioner.create(config)
    assert str(failed.value).startswith("openstack: server m went to ERROR: No valid host "
                                        "was found.; deleted the ")


def test_abort_deletes_what_an_interrupted_create_recorded(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud
) -> None:
    before = cloud.all_ids()

    def interrupted(address: str, port: int, timeout: float) -> list[str]:
        raise KeyboardInterrupt

    provisioner.keyscan = interrupted
    with pytest.raises(KeyboardInterrupt):
        provisioner.create(config)
    assert len(recorded(config)["server"]) == 3

    provisioner.abort(config)

    assert cloud.all_ids() == before
    assert not (config.state_dir / STATE_FILE).exists()


# --- leaks of earlier runs ----------------------------------------------------------------


@pytest.fixture
def leaks(cloud: FakeCloud) -> dict[str, Any]:
    """An old run that leaked everything, a young run, and an old untagged network."""
    old, tags = timedelta(days=3), ["stackcheck", f"stackcheck-run={OLD_RUN}"]
    net = cloud.add("networks", name=f"sc-{OLD_RUN}-net", tags=tags, created_at=stamp(old))
    subnet = cloud.add("subnets", name=f"sc-{OLD_RUN}-subnet", network_id=net["id"],
                       cidr="10.42.0.0/24", gateway_ip="10.42.0.1", tags=tags,
                       created_at=stamp(old))
    net["subnets"].append(subnet["id"])
    router = cloud.add("routers", name=f"sc-{OLD_RUN}-router", tags=tags, created_at=stamp(old))
    cloud.add("ports", device_id=router["id"], device_owner="network:router_interface",
              network_id=net["id"], fixed_ips=[{"subnet_id": subnet["id"],
                                                "ip_address": "10.42.0.1"}])
    group = cloud.add("security-groups", name=f"sc-{OLD_RUN}-sg", tags=tags,
                      created_at=stamp(old))
    fip = cloud.add("floatingips", floating_ip_address="203.0.113.99", tags=tags,
                    floating_network_id=cloud.external["id"], created_at=stamp(old))
    server = cloud.add_server(f"sc-{OLD_RUN}-h1", {"stackcheck": "1", "stackcheck-run": OLD_RUN},
                              old)
    cloud.add("ports", device_id=server["id"], device_owner="compute:nova",
              network_id=net["id"], security_groups=[group["id"]],
              fixed_ips=[{"subnet_id": subnet["id"], "ip_address": "10.42.0.10"}])
    keypair = cloud.add_keypair(f"sc-{OLD_RUN}-key", old)
    young = cloud.add("networks", name="sc-young-net", created_at=stamp(timedelta(hours=1)),
                      tags=["stackcheck", "stackcheck-run=young"])
    manual = cloud.add("networks", name="sc-manual-net", created_at=stamp(old))
    return {"leaked": {net["id"], subnet["id"], router["id"], group["id"], fip["id"],
                       server["id"], keypair["name"]},
            "kept": {young["id"], manual["id"], cloud.external["id"]}}


def quick_deleter(conn: Any) -> Deleter:
    return Deleter(conn, attempts=3, interval=0.01, sleep=lambda _s: None)


def test_cleanup_dry_run_reports_and_deletes_nothing(
    conn: Any, cloud: FakeCloud, leaks: dict[str, Any]
) -> None:
    lines = cleanup(conn, timedelta(hours=24), dry_run=True, deleter=quick_deleter(conn))

    assert cloud.calls("DELETE") == [] and not [c for c in cloud.calls("PUT")]
    assert [line.split()[0] for line in lines] == [
        "floating_ip", "server", "router_interface", "router", "subnet", "network",
        "security_group", "keypair"]
    assert all(f"run {OLD_RUN}" in line for line in lines)
    assert not any("young" in line or "manual" in line for line in lines)


def test_cleanup_deletes_old_tagged_resources_only(
    conn: Any, cloud: FakeCloud, leaks: dict[str, Any]
) -> None:
    lines = cleanup(conn, timedelta(hours=24), dry_run=False, deleter=quick_deleter(conn))

    assert len(lines) == 8
    assert not leaks["leaked"] & cloud.all_ids()
    assert leaks["kept"] <= cloud.all_ids()


def test_cleanup_command_prints_what_it_would_delete(
    conn: Any, cloud: FakeCloud, leaks: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("stackcheck_provisioners.openstack.connect", lambda name: conn)
    result = CliRunner().invoke(cleanup_command, ["--cloud", "fakecloud", "--older-than", "2d",
                                                  "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"would delete network sc-{OLD_RUN}-net" in result.output
    assert cloud.calls("DELETE") == []
    assert parse_age("30m") == timedelta(minutes=30)
    bad = CliRunner().invoke(cleanup_command, ["--cloud", "x", "--older-than", "soon"])
    assert bad.exit_code == 2 and "expected a number and m/h/d" in bad.output


# --- checks before anything is created ----------------------------------------------------


def test_quota_shortfall_is_one_clear_line_and_creates_nothing(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud
) -> None:
    cloud.limits["limits"]["absolute"].update(maxTotalInstances=5, totalInstancesUsed=4)
    cloud.net_quota["quota"]["floatingip"].update(limit=4, used=2)

    with pytest.raises(ProvisionerError) as failed:
        provisioner.create(config)

    assert str(failed.value) == ("quota: need 3 instances, 1 left, need 3 floating IPs, 2 left "
                                 "in project lab-project")
    assert cloud.calls("POST") == [] and cloud.calls("DELETE") == []


def test_image_not_found_is_one_clear_line(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud
) -> None:
    write_spec(config, image="CentOS-Atomic-missing")
    with pytest.raises(ProvisionerError, match=r"^image not found: 'CentOS-Atomic-missing' "
                                               r"\(project lab-project; check"):
        provisioner.create(config)
    assert cloud.calls("POST") == []


def test_flavor_not_found_is_one_clear_line(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud
) -> None:
    write_spec(config, flavor="m9.huge")
    with pytest.raises(ProvisionerError, match=r"^flavor not found: 'm9.huge'"):
        provisioner.create(config)
    assert cloud.calls("POST") == []


def test_rejected_credentials_are_one_line_without_the_password(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud
) -> None:
    cloud.mocker.post("https://identity.example.test/v3/auth/tokens", status_code=401,
                      json={"error": {"code": 401, "title": "Unauthorized",
                                      "message": "The request you have made requires "
                                                 "authentication."}})
    with pytest.raises(ProvisionerError) as failed:
        provisioner.create(config)
    assert str(failed.value).startswith("openstack: checking the cloud failed: ")
    assert "HTTP 401" in str(failed.value) and PASSWORD not in str(failed.value)


def test_spec_errors_name_the_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("cloud: c\nimage: i\nflavor: f\nhosts:\n  - name: a\n    roles: [etcd, db]\n")
    with pytest.raises(ProvisionerError,
                       match=r"spec.yaml:6: hosts\[0\].roles: unknown role\(s\) db"):
        load_spec(path)
    path.write_text("cloud: c\nimage: i\nflavor: f\nfloating_ips: true\n")
    with pytest.raises(ProvisionerError, match=r"floating_ips: true needs network.external"):
        load_spec(path)
    path.write_text("cloud: c\nimage: i\nflavor: f\nnetwork: {existing: shared}\n")
    with pytest.raises(ProvisionerError, match=r"every host needs a fixed_ip"):
        load_spec(path)
    path.write_text("cloud: c\nflavor: f\n")
    with pytest.raises(ProvisionerError, match=r"spec.yaml:1: image: required field"):
        load_spec(path)


def test_missing_spec_option_is_explained(provisioner: OpenStackProvisioner,
                                          tmp_path: Path) -> None:
    with pytest.raises(ProvisionerError, match="needs a lab spec: pass --option spec=FILE"):
        provisioner.create(ProvisionConfig(run_id=RUN, state_dir=tmp_path))


# --- secrets ------------------------------------------------------------------------------


def test_no_credential_in_logs_errors_or_files(
    provisioner: OpenStackProvisioner, config: ProvisionConfig, cloud: FakeCloud,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    lab = provisioner.create(config)
    provisioner.destroy(lab)
    cloud.fail("POST", "routers", 500)
    with pytest.raises(ProvisionerError) as failed:
        provisioner.create(config)

    assert cloud.mocker.request_history, "the fake was used"
    assert any("keystoneauth" in r.name or "openstack" in r.name for r in caplog.records), \
        "openstacksdk's DEBUG logging was captured"
    texts = [caplog.text, str(failed.value)]
    texts += [p.read_text(errors="replace") for p in config.state_dir.rglob("*") if p.is_file()]
    for text in texts:
        assert PASSWORD not in text
        assert TOKEN not in text


def test_the_example_spec_is_valid() -> None:
    root = Path(__file__).resolve().parent.parent
    spec = load_spec(root / "provisioners" / "openstack" / "example-spec.yaml")
    assert [h.name for h in spec.host_list(3)] == ["master", "node1", "node2"]
    assert {r.ports for r in spec.security_rules()} >= {"22", "2379-2380", "8472", "10250"}
