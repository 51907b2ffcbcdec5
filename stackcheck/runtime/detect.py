"""Ask a host which container runtime it runs, whether it answers, and what its pods get.

The order of evidence: the kubelet's own flags (the runtime it really uses), else whichever
daemon answers (Docker first), else what the host's roles and installed daemons say. Only
processes in the host's own network namespace count (on machines hosting several hosts as
namespaces, ``pgrep`` sees them all).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from stackcheck.runtime.parse import (
    CONTAINERD,
    CONTAINERD_CONFIG,
    CRIO,
    DEFAULT_SOCKETS,
    DOCKER,
    CniNetwork,
    ContainerdConfig,
    KubeletRuntime,
    ctr_server_version,
    flag_values,
    kube_version,
    kubelet_runtime,
    parse_cni,
    parse_containerd_config,
    pick_cni_file,
    runtime_of_socket,
)

if TYPE_CHECKING:
    from stackcheck.services import UnitState

UNKNOWN = "unknown"
#: s any one command of the detection may take on the host
COMMAND_TIMEOUT = 10

#: prints the cmdline of the first process named $1 in this shell's network namespace
_CMDLINE = (
    'me=$(readlink /proc/self/ns/net); for p in $(pgrep -x {name}); do '
    '[ "$(readlink /proc/$p/ns/net 2>/dev/null)" = "$me" ] && '
    "{{ tr '\\0' '\\n' < /proc/$p/cmdline; exit 0; }}; done; exit 1"
)


class Shell(Protocol):
    """What detection needs of a host: testinfra's ``host.run`` (rc, stdout, stderr)."""

    def run(self, command: str, *args: Any) -> Any: ...


@dataclass
class Runtime:
    """One host's container runtime as found."""

    kind: str  # docker, containerd, cri-o or unknown
    answers: bool
    socket: str
    probe: str = ""  # the command that asked the daemon
    said: str = ""  # its version when it answered, else its error
    version: str | None = None
    kubelet: KubeletRuntime | None = None
    containerd: ContainerdConfig | None = None
    evidence: list[str] = field(default_factory=list)  # how the kind was decided

    @property
    def variant(self) -> str:
        """``containerd 1.6.20~ds1`` (or just the kind when it does not answer)."""
        return f"{self.kind} {self.version}" if self.version else self.kind

    @property
    def summary(self) -> str:
        """One line for a person: what runs and whether it answers."""
        if self.kind == UNKNOWN:
            return "no container runtime found (no kubelet, Docker, containerd or CRI-O)"
        if self.answers:
            return f"{self.variant} answers on {self.socket}"
        return f"{self.kind} does not answer on {self.socket} ({self.probe}): {self.said}"

    @property
    def cni_conf_dir(self) -> str | None:
        """Where the runtime reads its CNI config (None for Docker: docker0, no CNI)."""
        if self.kind == CONTAINERD and self.containerd:
            return self.containerd.cni_conf_dir
        if self.kind in (CONTAINERD, CRIO):
            return "/etc/cni/net.d"
        return None

    def role_note(self, roles: list[str]) -> str | None:
        """Said (not an error) when an inventory's ``docker`` role names another runtime."""
        if "docker" in roles and self.kind not in (DOCKER, UNKNOWN):
            return (f"the inventory gives this host the 'docker' role; it runs {self.variant} "
                    "(not an error: Docker's own checks run only where Docker runs as a "
                    "service beside it)")
        return None


#: unit states of a service its manager runs or tries to run (``failed`` included)
_RUNNING = ("active", "activating", "reloading", "deactivating", "failed")


def docker_checks_skip(name: str, runtime: Runtime, docker_unit: UnitState | None) -> str | None:
    """Why Docker's own checks do not apply to host ``name``, or None when they do.

    They apply where Docker is the runtime (or none is found: a Docker host whose daemon is
    down), and wherever the host's service manager has Docker set to run, whatever the
    kubelet uses: its ``docker`` unit enabled, or running or failed. A unit that is absent,
    masked, or disabled and inactive means the host does not run Docker (a ``docker``
    binary on a shared PATH is not the host's word).
    """
    if runtime.kind in (DOCKER, UNKNOWN):
        return None
    if docker_unit is not None and docker_unit.word != "masked" and docker_unit.present and (
            docker_unit.file_state.startswith("enabled") or docker_unit.word in _RUNNING):
        return None
    if docker_unit is None:
        said = "its service manager cannot say whether it runs Docker"
    else:
        said = docker_unit.describe() + (
            f", {docker_unit.file_state}" if docker_unit.present and docker_unit.file_state
            else "")
    return (f"{name} runs {runtime.variant}, not Docker ({said}): Docker's own checks do not "
            "apply (the runtime suite checks it)")


def _run(host: Shell, command: str) -> tuple[int, str, str]:
    result = host.run(f"timeout {COMMAND_TIMEOUT} sh -c {shlex.quote(command)}")
    return result.rc, result.stdout or "", result.stderr or ""


def process_argv(host: Shell, name: str) -> list[str] | None:
    """argv of the process called ``name`` in the host's network namespace, or None."""
    rc, out, _ = _run(host, _CMDLINE.format(name=shlex.quote(name)))
    argv = [a for a in out.splitlines() if a]
    return argv if rc == 0 and argv else None


def _read(host: Shell, path: str) -> str | None:
    rc, out, _ = _run(host, f"cat {shlex.quote(path)}")
    return out if rc == 0 else None


def read_kubelet(host: Shell) -> KubeletRuntime | None:
    """The runtime the host's running kubelet uses (None when no kubelet runs)."""
    argv = process_argv(host, "kubelet")
    if argv is None:
        return None
    flags = flag_values(argv[1:])
    config = _read(host, flags["config"]) if flags.get("config") else None
    version = None
    if "container-runtime" not in flags and "container-runtime-endpoint" not in flags:
        _, out, _ = _run(host, f"{shlex.quote(argv[0])} --version")
        version = kube_version(out)
    return kubelet_runtime(argv, config, version)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _ask_docker(host: Shell, socket: str) -> tuple[bool, str, str, str | None]:
    probe = f"docker -H unix://{socket} info --format '{{{{.ServerVersion}}}}'"
    rc, out, err = _run(host, probe)
    version = out.strip()
    if rc == 0 and version:
        return True, probe, version, version
    return False, probe, _last_line(err or out), None


def _ask_cri(host: Shell, kind: str, socket: str) -> tuple[bool, str, str, str | None]:
    """crictl where present, else the runtime's own client over its socket."""
    if _run(host, f"test -S {shlex.quote(socket)}")[0] != 0:
        return False, f"test -S {socket}", f"no socket at {socket} (is {kind} running?)", None
    if _run(host, "command -v crictl")[0] == 0:
        probe = f"crictl --runtime-endpoint unix://{socket} --timeout 5s version"
        rc, out, err = _run(host, probe)
        version = next((line.split(":", 1)[1].strip() for line in out.splitlines()
                        if line.startswith("RuntimeVersion:")), None)
        if rc == 0:
            return True, probe, version or out.strip(), version
        return False, probe, _last_line(err or out), None
    if kind == CONTAINERD:
        probe = f"ctr --address {socket} --connect-timeout 5s version"
        rc, out, err = _run(host, probe)
        version = ctr_server_version(out)
        if rc == 0 and version:
            return True, probe, version, version
        return False, probe, _last_line(err or out), None
    probe = f"crio status --socket {socket} info"
    rc, out, err = _run(host, probe)
    return rc == 0, probe, _last_line(out if rc == 0 else err or out), None


def _containerd_config(host: Shell, argv: list[str]) -> tuple[ContainerdConfig, list[str]]:
    flags = flag_values(argv[1:])
    path = flags.get("config") or flags.get("c") or CONTAINERD_CONFIG
    text = _read(host, path)
    notes = [f"containerd runs: {' '.join(argv)[:200]}"]
    config = ContainerdConfig()
    if text is not None:
        config = parse_containerd_config(text, path)
        notes.append(f"its config: {path}")
    else:
        notes.append(f"no config at {path}: containerd's defaults")
    address = flags.get("address") or flags.get("a")
    if address:
        config.address = address
    return config, notes


def _containerd(host: Shell, seen: dict) -> tuple[ContainerdConfig, list[str]] | None:
    """The running containerd's config and how it was found (asked once per detection)."""
    if "containerd" not in seen:
        argv = process_argv(host, "containerd")
        seen["containerd"] = None if argv is None else _containerd_config(host, argv)
    return seen["containerd"]


def _kind(host: Shell, roles: list[str], kubelet: KubeletRuntime | None,
          docker: tuple[bool, str, str, str | None] | None, notes: list[str],
          seen: dict) -> str:
    if kubelet is not None:
        notes.append(f"the kubelet uses {kubelet.words}")
        if kubelet.runtime:
            return kubelet.runtime
    if docker and docker[0]:
        notes.append("Docker answers")
        return DOCKER
    if kubelet is None and "docker" in roles and _run(host, "command -v dockerd")[0] == 0:
        # no kubelet to say otherwise: a docker host whose daemon is down is still a Docker
        # host, even where a CRI containerd runs beside it for nothing
        notes.append("no kubelet; the host has the docker role and Docker installed "
                     "(it does not answer)")
        return DOCKER
    containerd = _containerd(host, seen)
    if containerd is not None and containerd[0].cri:
        notes.append("a containerd with its CRI plugin runs in the host's network namespace")
        return CONTAINERD
    if process_argv(host, "crio") is not None:
        notes.append("a crio process runs in the host's network namespace")
        return CRIO
    if "docker" in roles:
        # Docker's own containerd (CRI disabled) may run without dockerd: still Docker
        notes.append("no kubelet, no CRI runtime; the host has the docker role")
        return DOCKER
    return UNKNOWN


def detect(host: Shell, roles: list[str] | tuple[str, ...] = ()) -> Runtime:
    """Which runtime ``host`` runs and whether it answers (see the module docstring)."""
    roles = list(roles)
    notes: list[str] = []
    kubelet = read_kubelet(host)
    docker = None
    if kubelet is None or kubelet.runtime == DOCKER:
        docker = _ask_docker(host, kubelet.socket if kubelet else DEFAULT_SOCKETS[DOCKER])
    seen: dict = {}
    kind = _kind(host, roles, kubelet, docker, notes, seen)
    if kind == UNKNOWN:
        return Runtime(UNKNOWN, False, "", kubelet=kubelet, evidence=notes)
    if kind == DOCKER:
        docker = docker or _ask_docker(host, DEFAULT_SOCKETS[DOCKER])
        answers, probe, said, version = docker
        socket = kubelet.socket if kubelet else DEFAULT_SOCKETS[DOCKER]
        return Runtime(DOCKER, answers, socket, probe, said, version, kubelet, evidence=notes)
    config = None
    socket = kubelet.socket if kubelet and kubelet.runtime == kind else DEFAULT_SOCKETS[kind]
    if kind == CONTAINERD:
        found = _containerd(host, seen)
        if found is None:
            notes.append("no containerd process runs in the host's network namespace")
        else:
            config, more = found
            notes += more
            socket = config.address
    answers, probe, said, version = _ask_cri(host, kind, socket)
    return Runtime(kind, answers, socket, probe, said, version, kubelet, config, notes)


def probe(host: Shell, roles: list[str] | tuple[str, ...] = ()) -> tuple[bool, str]:
    """For a preflight: (the runtime answers, one line saying what runs and how it is)."""
    runtime = detect(host, roles)
    return runtime.answers, runtime.summary


def read_cni(host: Shell, runtime: Runtime) -> CniNetwork | None:
    """The CNI network the runtime gives pods (its config dir's first file), or None.

    Raises ``ValueError`` naming the file when the config is malformed.
    """
    conf_dir = runtime.cni_conf_dir
    if conf_dir is None:
        return None
    rc, out, _ = _run(host, f"ls -1 {shlex.quote(conf_dir)}")
    name = pick_cni_file(out.split()) if rc == 0 else None
    if name is None:
        return None
    path = f"{conf_dir.rstrip('/')}/{name}"
    text = _read(host, path)
    if text is None:
        raise ValueError(f"{path}: cannot be read")
    return parse_cni(text, path)


__all__ = ["UNKNOWN", "Runtime", "detect", "docker_checks_skip", "probe", "process_argv",
           "read_cni", "read_kubelet", "runtime_of_socket"]
