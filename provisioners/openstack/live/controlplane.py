"""Bring up (and tear down) a single-node OpenStack Zed control plane from Debian's packages.

keystone, glance, placement, nova (api, conductor, scheduler, compute with ``fake.FakeDriver``)
and neutron-server (ML2, linuxbridge mechanism) run as tracked processes on 127.0.21.1,
with MariaDB on a unix socket and RabbitMQ/epmd on 127.0.21.1. The linuxbridge agent runs in
the network namespace ``sc-os-net`` (made here), which holds every lab address (10.214.21.0/24);
it reaches RabbitMQ through a socat relay over a unix socket. The root namespace only gets a
veth with a route for 10.214.21.0/24 into that namespace; no DHCP or L3 agent runs.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from . import configs as c
from . import procs

DEFAULT_BASE = Path(os.environ.get("STACKCHECK_OS_DIR", "/var/tmp/stackcheck-openstack"))
DEBIAN_PACKAGES = ("python3-keystone", "python3-glance", "python3-nova", "python3-neutron",
                   "python3-placement", "mariadb-server", "rabbitmq-server", "uwsgi-core",
                   "uwsgi-plugin-python3", "socat", "python3-pymysql")
PASTE_DEBS = {"nova-common": ("usr/share/nova-common/api-paste.ini", "nova-api-paste.ini"),
              "glance-common": ("usr/share/glance-common/glance-api-paste.ini",
                                "glance-api-paste.ini"),
              "neutron-common": ("usr/share/neutron-common/api-paste.ini",
                                 "neutron-api-paste.ini")}


class NotAvailable(RuntimeError):
    """The control plane cannot be brought up here (the message says why)."""


def missing_packages() -> list[str]:
    missing = []
    for pkg in DEBIAN_PACKAGES:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True,
                             text=True)
        if "ok installed" not in out.stdout:
            missing.append(pkg)
    return missing


class ControlPlane:
    def __init__(self, base: Path = DEFAULT_BASE) -> None:
        self.lay = c.Layout(base)
        self.base = base
        self.timings: dict[str, float] = {}

    def _dead(self, *names: str):
        return lambda: next(filter(None, (procs.check_running(self.base, n) for n in names)),
                            None)

    # --- helpers -----------------------------------------------------------------------------

    def _stamp(self, name: str) -> Path:
        return self.base / "stamps" / name

    def _once(self, name: str, step) -> None:
        if self._stamp(name).exists():
            return
        t0 = time.monotonic()
        step()
        self._stamp(name).write_text(time.strftime("%F %T"))
        self.timings[name] = round(time.monotonic() - t0, 1)

    def passwords(self) -> dict[str, str]:
        path = self.base / "secrets.json"
        if not path.exists():
            names = ("db", "admin", "lab", *c.SERVICES)
            path.write_text(json.dumps({n: secrets.token_hex(12) for n in names}))
            path.chmod(0o600)
        return json.loads(path.read_text())

    def _mysql(self, sql: str) -> None:
        procs.run(["mariadb", f"--socket={self.lay.mysql_socket}", "-uroot", "-e", sql],
                  self.base, "mariadb")

    # --- up ----------------------------------------------------------------------------------

    def up(self) -> dict[str, float]:
        if os.geteuid() != 0:
            raise NotAvailable("the OpenStack control plane needs root (namespaces, MariaDB)")
        missing = missing_packages()
        if missing:
            raise NotAvailable("missing Debian packages: " + " ".join(missing) +
                               " (apt-get install --no-install-recommends them)")
        t0 = time.monotonic()
        self.started = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        for sub in ("etc", "log", "run", "stamps", "lock", "glance/images", "glance/staging",
                    "glance/tasks", "nova/instances", "neutron", "neutron-agent", "keystone"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o711)  # MariaDB runs as mysql
        pw = self.passwords()
        self._paste_files()
        self._write_configs(pw)
        self.namespace()
        self._mariadb(pw)
        self._rabbitmq()
        self._keystone(pw)
        self._once("keystone-catalog", lambda: self._catalog(pw))
        self._db_syncs()
        self._services()
        self._once("resources", self._resources)
        self._wait_compute()
        self.lay.clouds_yaml.write_text(c.clouds_yaml(pw))
        self.lay.clouds_yaml.chmod(0o600)
        self.timings["total"] = round(time.monotonic() - t0, 1)
        return self.timings

    def _paste_files(self) -> None:
        debs = self.base / "debs"
        debs.mkdir(exist_ok=True)
        for pkg, (inner, target) in PASTE_DEBS.items():
            if (self.lay.etc / target).exists():
                continue
            if not list(debs.glob(f"{pkg}_*.deb")):
                procs.run(["apt-get", "download", pkg], self.base, f"apt-get download {pkg}",
                          cwd=debs)
            deb = next(debs.glob(f"{pkg}_*.deb"))
            tmp = debs / f"x-{pkg}"
            procs.run(["dpkg-deb", "-x", str(deb), str(tmp)], self.base, f"unpack {pkg}")
            shutil.copy(tmp / inner, self.lay.etc / target)
            shutil.rmtree(tmp)

    def _write_configs(self, pw: dict[str, str]) -> None:
        files = {
            "keystone.conf": c.keystone_conf(self.lay, pw),
            "glance-api.conf": c.glance_conf(self.lay, pw),
            "placement.conf": c.placement_conf(self.lay, pw),
            "nova.conf": c.nova_conf(self.lay, pw),
            "neutron.conf": c.neutron_conf(self.lay, pw),
            "linuxbridge_agent.ini": c.linuxbridge_agent_conf(self.lay),
            "keystone.wsgi": "from keystone.server.wsgi import initialize_public_application\n"
                             "application = initialize_public_application()\n",
            "placement.wsgi": "from placement.wsgi import init_application\n"
                              "application = init_application()\n",
        }
        for name, text in files.items():
            path = self.lay.etc / name
            path.write_text(text)
            path.chmod(0o600)

    def namespace(self) -> None:
        """NETNS with a veth to the root namespace and a veth pair for the flat external net."""
        ns = c.NETNS
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        if ns not in names.split():
            procs.run(["ip", "netns", "add", ns], self.base, "ip netns add")
        steps = {
            c.HOST_VETH: [["ip", "link", "add", c.HOST_VETH, "type", "veth", "peer", "name",
                           c.NS_VETH, "netns", ns],
                          ["ip", "addr", "add", f"{c.HOST_VETH_IP}/24", "dev", c.HOST_VETH],
                          ["ip", "link", "set", c.HOST_VETH, "up"],
                          ["ip", "-n", ns, "addr", "add", f"{c.NS_VETH_IP}/24", "dev",
                           c.NS_VETH],
                          ["ip", "-n", ns, "link", "set", c.NS_VETH, "up"],
                          ["ip", "-n", ns, "link", "set", "lo", "up"]],
            # a veth pair stands in for the flat network's NIC (no dummy module everywhere)
            c.NS_DUMMY: [["ip", "-n", ns, "link", "add", c.NS_DUMMY, "type", "veth", "peer",
                          "name", c.NS_DUMMY + "-p"],
                         ["ip", "-n", ns, "link", "set", c.NS_DUMMY, "up"],
                         ["ip", "-n", ns, "link", "set", c.NS_DUMMY + "-p", "up"]],
        }
        for link, cmds in steps.items():
            where = [] if link == c.HOST_VETH else ["-n", ns]
            if subprocess.run(["ip", *where, "link", "show", link],
                              capture_output=True).returncode == 0:
                continue
            for cmd in cmds:
                procs.run(cmd, self.base, " ".join(cmd))

    def _mariadb(self, pw: dict[str, str]) -> None:
        data = self.base / "mysql"
        if not (data / "mysql").exists():
            data.mkdir(exist_ok=True)
            shutil.chown(data, "mysql", "mysql")
            procs.run(["mariadb-install-db", f"--datadir={data}", "--user=mysql",
                       "--skip-test-db", "--auth-root-authentication-method=socket"],
                      self.base, "mariadb-install-db")
        self.lay.mysql_socket.parent.mkdir(exist_ok=True)
        shutil.chown(self.lay.mysql_socket.parent, "mysql", "mysql")
        procs.start(self.base, "mariadb", [
            "mariadbd", "--no-defaults", f"--datadir={data}", "--user=mysql",
            f"--socket={self.lay.mysql_socket}", "--skip-networking",
            f"--pid-file={self.lay.mysql_socket.parent}/mariadbd.pid",
            "--innodb-buffer-pool-size=128M",
            "--max-connections=500", f"--log-error={self.lay.log}/mariadb.err"])
        procs.wait_for("MariaDB", lambda: None if self.lay.mysql_socket.exists()
                       else "no socket yet", 60, fatal=self._dead("mariadb"))

        def grants() -> None:
            dbs = ("keystone", "glance", "placement", "nova_api", "nova", "nova_cell0",
                   "neutron")
            sql = "".join(f"CREATE DATABASE IF NOT EXISTS {d}; " for d in dbs)
            sql += (f"CREATE USER IF NOT EXISTS 'sc'@'localhost' IDENTIFIED BY '{pw['db']}'; "
                    "GRANT ALL PRIVILEGES ON *.* TO 'sc'@'localhost'; FLUSH PRIVILEGES;")
            self._mysql(sql)
        self._once("databases", grants)

    def _rabbitmq(self) -> None:
        rabbit = self.base / "rabbitmq"
        rabbit.mkdir(exist_ok=True)
        (rabbit / "enabled_plugins").write_text("[].\n")
        env = procs.env_for(self.base, {
            "HOME": str(rabbit), "RABBITMQ_NODENAME": "scos@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": c.HOST, "RABBITMQ_NODE_PORT": str(c.AMQP_PORT),
            "RABBITMQ_DIST_PORT": str(c.DIST_PORT), "ERL_EPMD_ADDRESS": c.HOST,
            "ERL_EPMD_PORT": str(c.EPMD_PORT), "RABBITMQ_MNESIA_BASE": str(rabbit / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.lay.log),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(rabbit / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(rabbit / "rabbitmq"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                "-kernel inet_dist_use_interface {" + c.HOST.replace(".", ",") + "}",
        })
        (rabbit / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = {c.HOST}:{c.AMQP_PORT}\nloopback_users = none\n")
        procs.start(self.base, "rabbitmq", ["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=env)
        procs.wait_for("RabbitMQ", lambda: procs.tcp_open(c.HOST, c.AMQP_PORT), 120, 2,
                       fatal=self._dead("rabbitmq"))

    def _keystone(self, pw: dict[str, str]) -> None:
        manage = ["keystone-manage", "--config-file", str(self.lay.etc / "keystone.conf")]

        def setup() -> None:
            procs.run([*manage, "db_sync"], self.base, "keystone-manage db_sync")
            for what in ("fernet_setup", "credential_setup"):
                procs.run([*manage, what, "--keystone-user", "root", "--keystone-group", "root"],
                          self.base, f"keystone-manage {what}")
            v3 = f"{c.url('keystone')}/v3/"
            procs.run([*manage, "bootstrap", "--bootstrap-password", pw["admin"],
                       "--bootstrap-admin-url", v3, "--bootstrap-internal-url", v3,
                       "--bootstrap-public-url", v3, "--bootstrap-region-id", c.REGION],
                      self.base, "keystone-manage bootstrap")
        self._once("keystone", setup)
        self._uwsgi("keystone", "OS_KEYSTONE_CONFIG_FILES", "keystone.conf")

    def _uwsgi(self, name: str, env_var: str, conf: str) -> None:
        value = str(self.lay.etc / conf) if name == "keystone" else str(self.lay.etc)
        env = procs.env_for(self.base, {env_var: value})
        procs.start(self.base, name, [
            "uwsgi", "--plugin", "python3", "--http-socket", f"{c.HOST}:{c.PORTS[name]}",
            "--wsgi-file", str(self.lay.etc / f"{name}.wsgi"), "--processes", "2",
            "--threads", "1", "--master", "--die-on-term", "--lazy-apps",
            "--buffer-size", "65535", "--need-app",
            # http-socket closes every connection: tell clients, or a reused one gets a reset
            "--add-header", "Connection: close"], env=env)
        self._wait_http(name)

    def _wait_http(self, name: str, timeout: float = 120) -> None:
        procs.wait_for(name, lambda: procs.tcp_open(c.HOST, c.PORTS[name]), timeout,
                       fatal=self._dead(name))

    def _catalog(self, pw: dict[str, str]) -> None:
        from .catalog import register
        register(pw)

    def _db_syncs(self) -> None:
        etc = self.lay.etc
        nova = ["--config-file", str(etc / "nova.conf")]
        steps = {
            "glance-db": [[*procs.py_main("glance.cmd.manage", "glance-manage"),
                           "--config-file", str(etc / "glance-api.conf"), "db_sync"]],
            "placement-db": [[*procs.py_main("placement.cmd.manage", "placement-manage"),
                              "--config-file", str(etc / "placement.conf"), "db", "sync"]],
            "neutron-db": [[*procs.py_main("neutron.db.migration.cli", "neutron-db-manage"),
                            "--config-file", str(etc / "neutron.conf"), "upgrade", "heads"]],
            "nova-db": [procs.py_main("nova.cmd.manage", "nova-manage") + nova + args for args in
                        (["api_db", "sync"], ["cell_v2", "map_cell0", "--database_connection",
                          c.db_url(self.lay, self.passwords()["db"], "nova_cell0")],
                         ["cell_v2", "create_cell", "--name", "cell1"], ["db", "sync"])],
        }
        todo = {k: v for k, v in steps.items() if not self._stamp(k).exists()}
        if not todo:
            return
        t0 = time.monotonic()
        script = {k: " && ".join(shlex.join(a) for a in v) for k, v in todo.items()}
        running = {}
        for k, s in script.items():  # in parallel: the migrations are most of a first run
            with open(self.lay.log / f"{k}.log", "w") as log:
                running[k] = subprocess.Popen(["sh", "-c", s], stdout=log,
                                              stderr=subprocess.STDOUT,
                                              env=procs.env_for(self.base), cwd=self.base)
        failed = []
        for k, proc in running.items():
            if proc.wait(timeout=900) != 0:
                failed.append(f"{k}: {procs.log_tail(self.base, k)}")
            else:
                self._stamp(k).write_text(time.strftime("%F %T"))
        self.timings["db-syncs"] = round(time.monotonic() - t0, 1)
        if failed:
            raise RuntimeError("database migrations failed: " + "; ".join(failed))

    def _services(self) -> None:
        etc = self.lay.etc
        self._uwsgi("placement", "OS_PLACEMENT_CONFIG_DIR", "placement.conf")
        procs.start(self.base, "glance-api", [*procs.py_main("glance.cmd.api", "glance-api"),
                                              "--config-file", str(etc / "glance-api.conf")])
        nova = ["--config-file", str(etc / "nova.conf")]
        for svc in ("api", "conductor", "scheduler", "compute"):
            procs.start(self.base, f"nova-{svc}",
                        procs.py_main(f"nova.cmd.{svc}", f"nova-{svc}") + nova)
        procs.start(self.base, "neutron-server",
                    [*procs.py_main("neutron.cmd.eventlet.server", "neutron-server"),
                     "--config-file", str(etc / "neutron.conf")])
        procs.start(self.base, "amqp-relay-host", [
            "socat", f"UNIX-LISTEN:{self.lay.amqp_socket},fork,unlink-early",
            f"TCP:{c.HOST}:{c.AMQP_PORT}"])
        procs.start(self.base, "amqp-relay-ns", [
            "socat", f"TCP-LISTEN:{c.AMQP_PORT},bind=127.0.0.1,reuseaddr,fork",
            f"UNIX-CONNECT:{self.lay.amqp_socket}"], netns=c.NETNS)
        agent = "neutron.cmd.eventlet.plugins.linuxbridge_neutron_agent"
        procs.start(self.base, "linuxbridge-agent", [
            *procs.py_main(agent, "neutron-linuxbridge-agent"),
            "--config-file", str(etc / "neutron.conf"),
            "--config-file", str(etc / "linuxbridge_agent.ini")], netns=c.NETNS)
        for name, proc_name in (("glance", "glance-api"), ("nova", "nova-api"),
                                ("neutron", "neutron-server")):
            procs.wait_for(name, lambda s=name: procs.tcp_open(c.HOST, c.PORTS[s]), 180,
                           fatal=self._dead(proc_name))

    def _resources(self) -> None:
        from .catalog import resources
        resources(self.passwords())

    def _wait_compute(self) -> None:
        from .catalog import compute_ready
        procs.wait_for("nova-compute and the linuxbridge agent",
                       lambda: compute_ready(self.passwords(), self.started), 180, 3,
                       fatal=self._dead("nova-compute", "linuxbridge-agent", "nova-conductor",
                                        "nova-scheduler", "amqp-relay-ns"))

    # --- down ---------------------------------------------------------------------------------

    def down(self, purge: bool = False) -> list[str]:
        """Stop everything started here, remove the namespace; ``purge`` drops the data."""
        stopped = procs.stop_all(self.base) if self.base.exists() else []
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        if c.NETNS in names.split():
            subprocess.run(["ip", "netns", "del", c.NETNS], check=False)
            stopped.append(f"netns {c.NETNS}")
        if subprocess.run(["ip", "link", "show", c.HOST_VETH], capture_output=True).returncode == 0:
            subprocess.run(["ip", "link", "del", c.HOST_VETH], check=False)
            stopped.append(f"link {c.HOST_VETH}")
        if self.lay.amqp_socket.exists():
            self.lay.amqp_socket.unlink()
        if purge and self.base.exists():
            shutil.rmtree(self.base)
            stopped.append(f"data {self.base}")
        return stopped

    def status(self) -> dict[str, str]:
        """Each tracked process: running, or why not."""
        run = self.base / "run"
        names = sorted(p.stem for p in run.glob("*.pid")) if run.exists() else []
        return {n: procs.check_running(self.base, n) or "running" for n in names}
