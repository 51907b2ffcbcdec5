"""Configuration files of the single-node control plane (Debian's OpenStack Zed packages)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.21.1"  # every API, RabbitMQ and epmd listen here (loopback only)
PORTS = {"keystone": 5000, "glance": 9292, "placement": 8778, "nova": 8774, "neutron": 9696}
AMQP_PORT, DIST_PORT, EPMD_PORT = 5672, 25672, 43621
COMPUTE_HOST = "sc-os-compute"
NETNS = "sc-os-net"              # the L2 agent's namespace; all lab addresses live in it
HOST_VETH, NS_VETH, NS_DUMMY = "sc-os-h", "sc-os-n", "sc-os-ext"
LAB_NET = "10.214.21.0/24"       # routed from the root namespace into NETNS only
HOST_VETH_IP, NS_VETH_IP = "10.214.21.254", "10.214.21.253"
EXTERNAL_CIDR = "10.214.21.128/26"
EXTERNAL_POOL = ("10.214.21.130", "10.214.21.180")
TENANT_CIDR = "10.214.21.0/25"
REGION = "RegionOne"
SERVICES = ("glance", "placement", "nova", "neutron")


@dataclass(frozen=True)
class Layout:
    """Where everything of one control plane lives."""

    base: Path

    @property
    def etc(self) -> Path:
        return self.base / "etc"

    @property
    def log(self) -> Path:
        return self.base / "log"

    @property
    def run(self) -> Path:
        return self.base / "run"

    @property
    def mysql_socket(self) -> Path:
        return self.base / "mysqld" / "mysql.sock"  # a directory the mysql user owns

    @property
    def amqp_socket(self) -> Path:
        return self.run / "amqp.sock"

    @property
    def clouds_yaml(self) -> Path:
        return self.base / "clouds.yaml"


def url(service: str) -> str:
    return f"http://{HOST}:{PORTS[service]}"


def db_url(lay: Layout, password: str, name: str) -> str:
    return (f"mysql+pymysql://sc:{password}@localhost/{name}"
            f"?unix_socket={lay.mysql_socket}&charset=utf8")


def authtoken(password: str, user: str) -> str:
    return f"""[keystone_authtoken]
www_authenticate_uri = {url('keystone')}
auth_url = {url('keystone')}
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = {user}
password = {password}
"""


def _section_auth(name: str, password: str, user: str) -> str:
    return f"""[{name}]
auth_url = {url('keystone')}/v3
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = {user}
password = {password}
region_name = {REGION}
"""


def keystone_conf(lay: Layout, pw: dict[str, str]) -> str:
    return f"""[DEFAULT]
log_dir = {lay.log}
[database]
connection = {db_url(lay, pw['db'], 'keystone')}
[token]
provider = fernet
[fernet_tokens]
key_repository = {lay.base}/keystone/fernet-keys
[fernet_receipts]
key_repository = {lay.base}/keystone/fernet-keys
[credential]
key_repository = {lay.base}/keystone/credential-keys
"""


def glance_conf(lay: Layout, pw: dict[str, str]) -> str:
    return f"""[DEFAULT]
bind_host = {HOST}
bind_port = {PORTS['glance']}
workers = 1
enabled_backends = fs:file
[database]
connection = {db_url(lay, pw['db'], 'glance')}
{authtoken(pw['glance'], 'glance')}
[paste_deploy]
flavor = keystone
config_file = {lay.etc}/glance-api-paste.ini
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = {lay.base}/glance/images
[os_glance_staging_store]
filesystem_store_datadir = {lay.base}/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = {lay.base}/glance/tasks
[oslo_concurrency]
lock_path = {lay.base}/lock
"""


def placement_conf(lay: Layout, pw: dict[str, str]) -> str:
    return f"""[DEFAULT]
[api]
auth_strategy = keystone
[placement_database]
connection = {db_url(lay, pw['db'], 'placement')}
{authtoken(pw['placement'], 'placement')}
"""


def nova_conf(lay: Layout, pw: dict[str, str]) -> str:
    return f"""[DEFAULT]
host = {COMPUTE_HOST}
my_ip = {HOST}
state_path = {lay.base}/nova
instances_path = {lay.base}/nova/instances
transport_url = rabbit://guest:guest@{HOST}:{AMQP_PORT}/
compute_driver = fake.FakeDriver
enabled_apis = osapi_compute
osapi_compute_listen = {HOST}
osapi_compute_listen_port = {PORTS['nova']}
osapi_compute_workers = 1
vif_plugging_is_fatal = false
vif_plugging_timeout = 0
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = {lay.etc}/nova-api-paste.ini
[api_database]
connection = {db_url(lay, pw['db'], 'nova_api')}
[database]
connection = {db_url(lay, pw['db'], 'nova')}
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 5
{authtoken(pw['nova'], 'nova')}
{_section_auth('placement', pw['placement'], 'placement')}
{_section_auth('neutron', pw['neutron'], 'neutron')}
[glance]
api_servers = {url('glance')}
[vnc]
enabled = false
[oslo_concurrency]
lock_path = {lay.base}/lock
"""


def neutron_conf(lay: Layout, pw: dict[str, str]) -> str:
    return f"""[DEFAULT]
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
bind_host = {HOST}
bind_port = {PORTS['neutron']}
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 1
transport_url = rabbit://guest:guest@{HOST}:{AMQP_PORT}/
api_paste_config = {lay.etc}/neutron-api-paste.ini
state_path = {lay.base}/neutron
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
[database]
connection = {db_url(lay, pw['db'], 'neutron')}
{authtoken(pw['neutron'], 'neutron')}
{_section_auth('nova', pw['nova'], 'nova')}
[oslo_concurrency]
lock_path = {lay.base}/lock
[experimental]
linuxbridge = true
[ml2]
type_drivers = flat,vxlan
tenant_network_types = vxlan
mechanism_drivers = linuxbridge
extension_drivers = port_security
[ml2_type_flat]
flat_networks = extnet
[ml2_type_vxlan]
vni_ranges = 1:1000
[securitygroup]
enable_security_group = true
firewall_driver = noop
"""


def linuxbridge_agent_conf(lay: Layout) -> str:
    """The agent runs in NETNS and reaches RabbitMQ through a unix-socket relay there."""
    return f"""[DEFAULT]
host = {COMPUTE_HOST}
transport_url = rabbit://guest:guest@127.0.0.1:{AMQP_PORT}/
state_path = {lay.base}/neutron-agent
[agent]
root_helper = env
report_interval = 10
[linux_bridge]
physical_interface_mappings = extnet:{NS_DUMMY}
[vxlan]
enable_vxlan = true
local_ip = {NS_VETH_IP}
l2_population = false
[securitygroup]
enable_security_group = true
firewall_driver = noop
[oslo_concurrency]
lock_path = {lay.base}/lock
"""


def _cloud(name: str, user: str, password: str, project: str) -> str:
    return f"""  {name}:
    auth:
      auth_url: {url('keystone')}/v3
      username: {user}
      password: {password}
      project_name: {project}
      user_domain_name: Default
      project_domain_name: Default
    region_name: {REGION}
    identity_api_version: 3
    interface: public
"""


def clouds_yaml(pw: dict[str, str]) -> str:
    """``stackcheck-live``: the member-role lab project; ``stackcheck-live-admin``: admin."""
    return ("# written by provisioners/openstack/live (stackcheck): loopback-only control plane\n"
            "clouds:\n" + _cloud("stackcheck-live", "lab", pw["lab"], "lab")
            + _cloud("stackcheck-live-admin", "admin", pw["admin"], "admin"))
