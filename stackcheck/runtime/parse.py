"""Pure parsers of what container runtimes, kubelets and CNI configs say (no host access).

Each raises ``ValueError`` naming the file and field when the text is not what it should be.
"""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib
from dataclasses import dataclass, field

import yaml

DOCKER, CONTAINERD, CRIO = "docker", "containerd", "cri-o"
#: the socket each runtime listens on by default (``/var/run`` is ``/run``)
DEFAULT_SOCKETS = {
    DOCKER: "/run/docker.sock",
    CONTAINERD: "/run/containerd/containerd.sock",
    CRIO: "/run/crio/crio.sock",
}
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
CNI_CONF_DIR = "/etc/cni/net.d"
CNI_BIN_DIR = "/opt/cni/bin"
#: the file names libcni (and so containerd and CRI-O) load from a CNI config dir
CNI_EXTENSIONS = (".conf", ".conflist", ".json")
#: the first kubelet without dockershim (its default endpoint is containerd's socket)
NO_DOCKERSHIM = (1, 24)


def socket_of(endpoint: str) -> str:
    """``unix:///var/run/containerd/containerd.sock`` -> ``/run/containerd/containerd.sock``."""
    path = endpoint.strip().removeprefix("unix://")
    return "/run/" + path.removeprefix("/var/run/") if path.startswith("/var/run/") else path


def runtime_of_socket(path: str) -> str | None:
    """Which runtime a CRI or API socket belongs to, by its well-known file name."""
    name = path.rsplit("/", 1)[-1]
    if name == "containerd.sock":
        return CONTAINERD
    if name == "crio.sock":
        return CRIO
    if name in ("docker.sock", "dockershim.sock", "cri-dockerd.sock"):
        return DOCKER
    return None


def split_cmdline(raw: str) -> list[str]:
    """``/proc/PID/cmdline`` (NUL- or newline-separated) as argv."""
    return [a for a in re.split(r"[\0\n]", raw) if a]


def flag_values(argv: list[str]) -> dict[str, str]:
    """``--name=value`` and ``--name value`` flags of an argv (the last one wins)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-") and len(arg) > 1:
            name, sep, value = arg.lstrip("-").partition("=")
            if not sep and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                value = argv[i + 1]
                i += 1
            out[name] = value if (sep or value) else "true"
        i += 1
    return out


def kube_version(text: str) -> tuple[int, int] | None:
    """``Kubernetes v1.20.2`` -> (1, 20)."""
    match = re.search(r"v?(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass
class KubeletRuntime:
    """Which runtime a kubelet uses and through which socket, and where it says so."""

    runtime: str | None  # docker, containerd, cri-o, or None (a socket of unknown name)
    socket: str
    source: str  # e.g. "--container-runtime-endpoint", "--container-runtime=docker"

    @property
    def words(self) -> str:
        return f"{self.runtime or 'a CRI runtime'} at {self.socket} ({self.source})"


def kubelet_runtime(argv: list[str], config_text: str | None = None,
                    version: tuple[int, int] | None = None) -> KubeletRuntime:
    """The kubelet's runtime from its flags, its ``--config`` file and (if needed) version.

    A kubelet < 1.24 without ``--container-runtime=remote`` uses dockershim (Docker at
    ``--docker-endpoint``); from 1.24 the endpoint defaults to containerd's socket.
    """
    flags = flag_values(argv[1:])
    config: dict = {}
    if config_text:
        try:
            config = yaml.safe_load(config_text) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"kubelet --config {flags.get('config')}: not YAML: {exc}") from None
        if not isinstance(config, dict):
            raise ValueError(f"kubelet --config {flags.get('config')}: not a mapping")
    endpoint = flags.get("container-runtime-endpoint")
    source = "--container-runtime-endpoint"
    if not endpoint and config.get("containerRuntimeEndpoint"):
        endpoint = str(config["containerRuntimeEndpoint"])
        source = f"containerRuntimeEndpoint in {flags.get('config')}"
    kind = flags.get("container-runtime")
    dockershim = kind == "docker" or (
        kind is None and version is not None and version < NO_DOCKERSHIM)
    if dockershim:
        sock = socket_of(flags.get("docker-endpoint", "unix:///var/run/docker.sock"))
        return KubeletRuntime(DOCKER, sock, "--container-runtime=docker (dockershim)"
                              if kind else "dockershim (kubelet < 1.24, no remote runtime)")
    if not endpoint:
        endpoint = DEFAULT_SOCKETS[CONTAINERD]
        source = "the kubelet's default endpoint"
    sock = socket_of(endpoint)
    return KubeletRuntime(runtime_of_socket(sock), sock, source)


def ctr_server_version(text: str) -> str | None:
    """The server's ``Version:`` in ``ctr version`` output (None without a server part)."""
    _, sep, server = text.partition("Server:")
    if not sep:
        return None
    match = re.search(r"^\s*Version:\s*(\S+)", server, re.MULTILINE)
    return match.group(1) if match else None


@dataclass
class ContainerdConfig:
    """What a containerd ``config.toml`` says about the socket, CRI, runc and CNI."""

    address: str = DEFAULT_SOCKETS[CONTAINERD]
    cri: bool = True
    sandbox_image: str | None = None
    runc_binary: str | None = None
    systemd_cgroup: bool = False
    cni_conf_dir: str = CNI_CONF_DIR
    cni_bin_dir: str = CNI_BIN_DIR


def parse_containerd_config(text: str, path: str = CONTAINERD_CONFIG) -> ContainerdConfig:
    """Parse a containerd config (version 1 ``plugins.cri`` or 2 ``io.containerd.grpc.v1.cri``)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not TOML: {exc}") from None
    plugins = raw.get("plugins", {}) or {}
    cri_key = "io.containerd.grpc.v1.cri" if int(raw.get("version", 1)) >= 2 else "cri"
    cri = plugins.get(cri_key, {}) or {}
    containerd = cri.get("containerd", {}) or {}
    runtimes = containerd.get("runtimes", {}) or {}
    default = runtimes.get(containerd.get("default_runtime_name", "runc"), {}) or {}
    options = default.get("options", {}) or {}
    cni = cri.get("cni", {}) or {}
    disabled = set(raw.get("disabled_plugins", []) or [])
    return ContainerdConfig(
        address=socket_of(str((raw.get("grpc", {}) or {}).get("address")
                              or DEFAULT_SOCKETS[CONTAINERD])),
        cri=not ({"cri", "io.containerd.grpc.v1.cri"} & disabled),
        sandbox_image=cri.get("sandbox_image"),
        runc_binary=options.get("BinaryName") or None,
        systemd_cgroup=bool(options.get("SystemdCgroup", cri.get("systemd_cgroup", False))),
        cni_conf_dir=str(cni.get("conf_dir") or CNI_CONF_DIR),
        cni_bin_dir=str(cni.get("bin_dir") or CNI_BIN_DIR),
    )


@dataclass
class CniNetwork:
    """The pod network a CNI config gives: its bridge, MTU and subnet where it says them."""

    file: str
    name: str
    types: list[str] = field(default_factory=list)  # plugin types, in order
    bridge: str | None = None  # the Linux bridge pods attach to (None: no bridge plugin)
    mtu: int | None = None  # None: the plugin's default (flannel: subnet.env's FLANNEL_MTU)
    subnet: ipaddress.IPv4Network | None = None  # None: from subnet.env (flannel) or unknown
    flannel: bool = False  # flannel's plugin: bridge + host-local from /run/flannel/subnet.env


def pick_cni_file(names: list[str]) -> str | None:
    """The config libcni loads first from a directory listing (lexical order)."""
    usable = sorted(n for n in names if n.endswith(CNI_EXTENSIONS))
    return usable[0] if usable else None


def _ipam_subnet(ipam: dict, where: str) -> ipaddress.IPv4Network | None:
    subnet = ipam.get("subnet")
    if subnet is None:
        ranges = ipam.get("ranges") or []
        first = ranges[0][0] if ranges and ranges[0] else {}
        subnet = first.get("subnet") if isinstance(first, dict) else None
    if subnet is None:
        return None
    try:
        return ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise ValueError(f"{where}: ipam subnet {subnet!r} is not a network") from None


def parse_cni(text: str, file: str) -> CniNetwork:
    """Parse a CNI ``.conflist`` or ``.conf``; the first plugin is the pod network's."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file}: not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{file}: expected a JSON object")
    plugins = raw.get("plugins") if "plugins" in raw else [raw]
    if not isinstance(plugins, list) or not plugins or not all(
            isinstance(p, dict) for p in plugins):
        raise ValueError(f"{file}: field plugins: expected a list of plugin objects")
    net = CniNetwork(file=file, name=str(raw.get("name", "")),
                     types=[str(p.get("type", "?")) for p in plugins])
    main = plugins[0]
    if main.get("type") == "flannel":
        delegate = main.get("delegate", {}) or {}
        net.flannel = True
        net.bridge = str(delegate.get("bridge", "cni0"))
        net.mtu = int(delegate["mtu"]) if "mtu" in delegate else None
    elif main.get("type") == "bridge":
        net.bridge = str(main.get("bridge", "cni0"))
        net.mtu = int(main["mtu"]) if "mtu" in main else None
        net.subnet = _ipam_subnet(main.get("ipam", {}) or {}, f"{file}: plugins[0]")
    return net
