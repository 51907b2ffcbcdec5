"""Names, addresses and paths of a local lab, derived from its options alone.

Everything else (bring-up, control, teardown) works from a :class:`Layout`, rebuilt
from the options recorded in the state file, so a crash leaves enough to clean up.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackcheck.flannel import model as flannel
from stackcheck_provisioners.base import ProvisionerError

if TYPE_CHECKING:
    from stackcheck_provisioners.hostlab.options import HostLabOptions

DEFAULT_SUBNET = "10.213.0.0/24"
DEFAULT_NAME = "lab"
FLANNEL_NETWORK = flannel.DEFAULT_NETWORK
#: the veths' 1500 less vxlan's headers
FLANNEL_MTU = 1500 - flannel.VXLAN_OVERHEAD
VXLAN_PORT = flannel.DEFAULT_PORT
OS_NAME = "stackcheck"
#: container runtimes the local lab can build (option ``runtime``); the first is the default
RUNTIMES = ("docker", "containerd")
#: a lab name: it prefixes namespaces and links (<= 15 characters)
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")


@dataclass(frozen=True)
class HostPlan:
    """One host: its netns, address, directory, flannel subnet, and etcd membership."""

    name: str
    index: int
    netns: str
    address: str
    dir: Path
    etcd: bool

    @property
    def flannel_subnet(self) -> str:
        """The host's /24 of the overlay, e.g. ``10.244.1.0/24``."""
        return str(flannel.nth_subnet(FLANNEL_NETWORK, self.index))

    @property
    def bridge_ip(self) -> str:
        """The first address of the host's subnet, e.g. ``10.244.1.1``."""
        return str(flannel.nth_subnet(FLANNEL_NETWORK, self.index).network_address + 1)

    @property
    def run_dir(self) -> Path:
        """Bind-mounted on /run inside the host."""
        return self.dir / "run"

    @property
    def docker_socket(self) -> Path:
        return self.run_dir / "docker.sock"


@dataclass(frozen=True)
class Layout:
    """The whole lab plan."""

    name: str
    run_id: str
    state_dir: Path
    subnet: ipaddress.IPv4Network
    host_count: int
    docker: bool = True
    kubernetes: bool = True
    k8s_bin_dir: str | None = None
    flannel: str = "etcd"  # where flannel's data live: "etcd" or "kube" (--kube-subnet-mgr)
    runtime: str = "docker"

    @classmethod
    def from_options(cls, state_dir: Path, run_id: str, hosts: int, options: HostLabOptions,
                     *, flannel: str = "etcd", runtime: str = RUNTIMES[0]) -> Layout:
        """The plan of a lab of ``hosts`` hosts from its validated options (``flannel`` and
        ``runtime``: the local lab's own keys, validated with them)."""
        subnet = ipaddress.IPv4Network(options.subnet)
        if not 1 <= hosts <= min(200, subnet.num_addresses - 12):
            raise ProvisionerError(f"{hosts} hosts do not fit the lab (1..200, subnet {subnet})")
        bin_dir = options.k8s_bin_dir
        return cls(options.name, run_id, Path(state_dir).resolve(), subnet, hosts,
                   # dockerd runs only as the docker runtime
                   options.docker and runtime == "docker", options.kubernetes,
                   str(Path(bin_dir).expanduser().resolve()) if bin_dir else None, flannel,
                   runtime)

    @classmethod
    def recorded(cls, state_dir: Path, run_id: str, config: dict[str, Any]) -> Layout:
        """The layout whose :meth:`options` a state file recorded (validated when made)."""
        return cls(config["name"], run_id, Path(state_dir).resolve(),
                   ipaddress.IPv4Network(config["subnet"]), config["hosts"], config["docker"],
                   config["kubernetes"], config["k8s_bin_dir"], config["flannel"],
                   config["runtime"])

    def options(self) -> dict[str, Any]:
        return {"name": self.name, "subnet": str(self.subnet), "hosts": self.host_count,
                "docker": self.docker, "kubernetes": self.kubernetes,
                "k8s_bin_dir": self.k8s_bin_dir, "flannel": self.flannel,
                "runtime": self.runtime}

    @property
    def prefix(self) -> int:
        return self.subnet.prefixlen

    @property
    def gateway(self) -> str:
        """The root namespace's address on the lab subnet."""
        return str(self.subnet.network_address + 1)

    @property
    def underlay(self) -> str:
        return f"sc-{self.name}-u"

    @property
    def root_link(self) -> str:
        """The root-namespace end of the veth into the underlay bridge (<= 15 chars)."""
        if len(self.name) <= 12:
            return f"sc-{self.name}"
        return "sc-" + hashlib.sha1(self.name.encode()).hexdigest()[:10]

    @property
    def hosts(self) -> list[HostPlan]:
        etcd_count = 3 if self.host_count >= 3 else 1
        return [
            HostPlan(
                name=f"h{i}",
                index=i,
                netns=f"sc-{self.name}-h{i}",
                address=str(self.subnet.network_address + 10 + i),
                dir=self.state_dir / "hosts" / f"h{i}",
                etcd=i <= etcd_count,
            )
            for i in range(1, self.host_count + 1)
        ]

    def host(self, name: str) -> HostPlan:
        for plan in self.hosts:
            if plan.name == name:
                return plan
        raise ProvisionerError(f"no host {name!r} in local lab {self.name!r}")

    @property
    def etcd_hosts(self) -> list[HostPlan]:
        return [h for h in self.hosts if h.etcd]

    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"

    @property
    def ssh_dir(self) -> Path:
        return self.state_dir / "ssh"

    @property
    def images_dir(self) -> Path:
        return self.state_dir / "images"

    @property
    def inventory(self) -> Path:
        return self.state_dir / "inventory.yaml"

    @property
    def env(self) -> dict[str, str]:
        """Environment marking every lab process, so leaks can be traced to a run."""
        return {"STACKCHECK_LAB": self.name, "STACKCHECK_RUN_ID": self.run_id}


def tls_files(layout: Layout) -> dict[str, Path]:
    """The harness's etcd client files (made by ``pki``)."""
    d = layout.pki_dir
    return {"ca": d / "ca.crt", "cert": d / "client.crt", "key": d / "client.key"}
