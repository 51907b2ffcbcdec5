"""The Lab model: what a provisioner hands to the suites, and its YAML inventory.

One inventory file describes one lab. Relative paths in it resolve against the
folder of the inventory file. A malformed file raises :class:`InventoryError`
with every problem at once, one line each naming the file, the line, the field path and
what was expected, so a person fixes them all in one go.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from stackcheck import layers

DEFAULT_FLANNEL_PREFIX = "/coreos.com/network"


class InventoryError(ValueError):
    """A malformed inventory; the message is meant for an operator, not a traceback."""


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    path = value.expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


def _must_exist(value: Path) -> Path:
    if not value.exists():
        raise ValueError(f"file not found: {value}")
    return value


RelPath = Annotated[Path, AfterValidator(_resolve)]
ExistingPath = Annotated[Path, AfterValidator(_resolve), AfterValidator(_must_exist)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class SSHAccess(_Model):
    """How to reach a host over SSH. Host keys are always checked against known_hosts."""

    user: str = "root"
    port: int = Field(22, ge=1, le=65535)
    identity_file: ExistingPath | None = None
    known_hosts: ExistingPath
    connect_timeout: float = Field(10.0, gt=0)


class ServiceControl(_Model):
    """Shell command templates run on a host to control its services.

    ``{unit}`` is replaced by the unit name of the service (see ``units``).
    """

    stop: str = "systemctl stop {unit}"
    start: str = "systemctl start {unit}"
    restart: str = "systemctl restart {unit}"
    is_active: str = "systemctl is-active --quiet {unit}"
    #: the unit's state as ``key=value`` lines (systemctl show's format: LoadState,
    #: ActiveState, UnitFileState, StateChangeTimestamp)
    status: str = ("systemctl show --no-pager -p Id,LoadState,ActiveState,SubState,"
                   "UnitFileState,StateChangeTimestamp {unit}")
    #: the unit's last log lines, newest last
    journal: str = "journalctl --no-pager -o cat -n 5 -u {unit}"
    reboot: str = "systemctl reboot"
    #: prints the last ``{lines}`` lines of a service's log (must-gather, the host's own word)
    logs: str = "journalctl -u {unit} -n {lines} --no-pager -q"
    units: dict[str, str] = Field(
        default_factory=lambda: {**layers.default_units(), "sshd": "sshd"}
    )

    def log_command(self, service: str, lines: int = 50) -> str:
        """The command that prints the last ``lines`` lines of ``service``'s log."""
        return self.logs.format(unit=self.units.get(service, service), lines=int(lines))

    def command(self, action: str, service: str) -> str:
        if action not in {"stop", "start", "restart", "is_active", "status", "journal",
                          "reboot"}:
            raise ValueError(f"unknown service action {action!r}")
        unit = self.units.get(service, service)
        return getattr(self, action).format(unit=unit)


class Host(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    address: str
    roles: list[str] = Field(default_factory=list)
    ssh: SSHAccess | None = None
    service_control: ServiceControl | None = None
    ostree_sysroot: str = Field("/", description="where the host's ostree sysroot lives")
    rack: str | None = Field(None, description="rack or zone; sampling at scale covers every "
                             "rack pair (default: the host's underlay /24)")

    @field_validator("address")
    @classmethod
    def _ip_address(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"expected an IP address, got {value!r}") from None

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        known = layers.known_roles()
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(
                f"unknown role(s) {', '.join(unknown)}; expected some of "
                f"{', '.join(sorted(known))}"
            )
        return value

    def has_role(self, role: str) -> bool:
        return role in self.roles


class EtcdAccess(_Model):
    endpoints: list[str] = Field(min_length=1)
    external: bool = Field(False, description="endpoints may be outside the lab's hosts")
    ca_file: ExistingPath | None = None
    cert_file: ExistingPath | None = None
    key_file: ExistingPath | None = None
    prefix: str = "/"

    @field_validator("endpoints")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"expected http(s)://host:port, got {url!r}")
        return value


class KubernetesAccess(_Model):
    kubeconfig: ExistingPath
    external: bool = Field(False, description="the API server may be outside the lab's hosts")


class FlannelConfig(_Model):
    etcd_prefix: str = DEFAULT_FLANNEL_PREFIX
    mode: Literal["auto", "etcd", "kube"] = Field(
        "auto", description="where flannel keeps its data: etcd, Kubernetes (--kube-subnet-mgr)"
        " or auto (found by looking)")
    daemonset: str = Field(
        "kube-flannel-ds", description="the DaemonSet that runs flanneld in Kubernetes mode; "
        "empty when flanneld runs outside Kubernetes (a system service, a lab's own plumbing)")


class Lab(_Model):
    """Everything the suites know about a lab."""

    name: str = "lab"
    provisioner: str = "existing"
    run_id: str | None = None
    owned: bool = Field(
        False, description="True when this run created the lab and must destroy it"
    )
    state_dir: RelPath | None = None
    ssh: SSHAccess
    hosts: list[Host] = Field(min_length=1)
    etcd: EtcdAccess | None = None
    kubernetes: KubernetesAccess | None = None
    flannel: FlannelConfig = Field(default_factory=FlannelConfig)
    service_control: ServiceControl = Field(default_factory=ServiceControl)
    environment: dict[str, str] = Field(
        default_factory=dict, description="facts for the report (versions, flannel kind)"
    )

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Lab:
        if (info.context or {}).get("skip_cross_check"):
            return self  # load_inventory reports these with their line
        problems = cross_check(self)
        if problems:
            loc, why = problems[0]
            raise ValueError(f"{field_path(loc)}: {why}")
        return self

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"no host named {name!r} in lab {self.name!r}")

    def hosts_with(self, role: str) -> list[Host]:
        return [h for h in self.hosts if h.has_role(role)]

    def ssh_for(self, host: Host) -> SSHAccess:
        return host.ssh or self.ssh

    def control_for(self, host: Host) -> ServiceControl:
        return host.service_control or self.service_control

    @property
    def failure_tolerance(self) -> int:
        """How many etcd members may fail with quorum kept."""
        return max(0, (len(self.hosts_with("etcd")) - 1) // 2)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> Lab:
        return cls.model_validate_json(text)

    def to_inventory_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_none=True, exclude={"owned"})
        return yaml.safe_dump(data, sort_keys=False)


# --- loading a YAML file with precise error locations --------------------------
# Public: a provisioner's own YAML (e.g. the OpenStack lab spec) reports its errors the same way.


def node_at(node: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """The deepest YAML node that still matches the error location ``loc``."""
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
            if child is None:
                key = next((k for k, _ in node.value if k.value == part), None)
                return key or node
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def field_path(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a dotted path: ``hosts[1].address``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def describe(error: dict[str, Any]) -> str:
    """One pydantic error in words for an operator ("required field is missing", ...)."""
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ")


def kubeconfig_server(path: Path) -> str | None:
    """The API server URL of a kubeconfig's first cluster, or None if it has none."""
    try:
        data = yaml.safe_load(Path(path).read_text())
        return str(data["clusters"][0]["cluster"]["server"])
    except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError):
        return None


def cross_check(lab: Lab) -> list[tuple[tuple[Any, ...], str]]:
    """What a valid-looking inventory still gets wrong: (field location, why) pairs.

    Host names are unique; etcd endpoints and the Kubernetes API are on the lab's hosts
    unless marked ``external`` (a typo'd endpoint would otherwise pass validation and
    fail every etcd check later with a confusing error).
    """
    problems: list[tuple[tuple[Any, ...], str]] = []
    seen: set[str] = set()
    for index, host in enumerate(lab.hosts):
        if host.name in seen:
            problems.append((("hosts", index, "name"), f"duplicate host name {host.name!r}"))
        seen.add(host.name)
    known = {h.address for h in lab.hosts} | {h.name for h in lab.hosts}
    listed = ", ".join(h.address for h in lab.hosts[:6]) + (", …" if len(lab.hosts) > 6 else "")
    if lab.etcd is not None and not lab.etcd.external:
        for index, endpoint in enumerate(lab.etcd.endpoints):
            address = _url_host(endpoint)
            if address not in known:
                problems.append((
                    ("etcd", "endpoints", index),
                    f"{endpoint} is on no host of the lab (hosts: {listed}); "
                    f"set etcd.external: true for an etcd outside the lab",
                ))
    if lab.kubernetes is not None and not lab.kubernetes.external:
        server = kubeconfig_server(lab.kubernetes.kubeconfig)
        if server is not None and _url_host(server) not in known:
            problems.append((
                ("kubernetes", "kubeconfig"),
                f"its API server {server} is on no host of the lab (hosts: {listed}); "
                f"set kubernetes.external: true for an API outside the lab",
            ))
    return problems


def _url_host(url: str) -> str:
    host = urlsplit(url).hostname or ""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def read_yaml(path: Path, what: str, error: type[Exception]) -> tuple[Any, yaml.Node | None]:
    """A YAML file's data and its node tree (which knows each value's line); ``error`` says
    the file, the line and why when it cannot be read or parsed."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{path}{line}: not valid YAML: {problem}") from None
    return data, root


def problems_of(exc: ValidationError) -> list[tuple[tuple[Any, ...], str]]:
    """Every error of a validation: (field location, why in words)."""
    return [(tuple(error["loc"]), describe(error)) for error in exc.errors()]


def load_inventory(path: str | Path) -> Lab:
    """Read and validate an inventory file; raise InventoryError with file:line: field: why."""
    path = Path(path)
    data, root = read_yaml(path, "inventory", InventoryError)
    if not isinstance(data, dict):
        raise InventoryError(f"{path}:1: expected a mapping of lab fields at the top level")
    context = {"base_dir": path.resolve().parent, "skip_cross_check": True}
    try:
        lab = Lab.model_validate(data, context=context)
    except ValidationError as exc:
        raise InventoryError(located_all(path, root, problems_of(exc))) from None
    problems = cross_check(lab)
    if problems:
        raise InventoryError(located_all(path, root, problems))
    return lab


def located_all(path: Path, root: yaml.Node | None,
                problems: list[tuple[tuple[Any, ...], str]]) -> str:
    """Every problem on a line of its own, ``file:line: field: why``, in file order."""
    lines: list[tuple[int, str]] = []
    for loc, why in problems:
        node = node_at(root, loc)
        line = node.start_mark.line + 1 if node is not None else 1
        text = f"{path}:{line}: {field_path(loc)}: {why}"
        if (line, text) not in lines:
            lines.append((line, text))
    lines.sort(key=lambda item: item[0])
    return "\n".join(text for _, text in lines)


def write_inventory(lab: Lab, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(lab.to_inventory_yaml())
    return path


# the old private names, for branches written before these became public
_node_at, _field_path, _describe, _located_all = node_at, field_path, describe, located_all
