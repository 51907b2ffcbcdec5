"""The provisioner contract and its registry (think Molecule's driver base).

A provisioner turns a :class:`ProvisionConfig` into a :class:`~stackcheck.lab.Lab` and tears
it down. Implementations register under the ``stackcheck.provisioners`` entry-point group,
so one in another package is found without touching this repository. The contract lives in
the library so that the library never imports ``provisioners`` (the implementations).
"""

from __future__ import annotations

import math
import shlex
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackcheck.lab import Host, Lab
from stackcheck.provisioner_types import ProvisionerError, ServiceResult

__all__ = ["ENTRY_POINT_GROUP", "ProvisionConfig", "Provisioner", "ProvisionerError",
           "ProvisionerOptions", "ServiceResult", "available", "get_provisioner"]


class ProvisionerOptions(BaseModel):
    """The ``--option KEY=VALUE`` settings a provisioner accepts; each provisioner declares
    its own subclass (fields with defaults and a description). An unknown key is an error:
    a typo such as ``kubernets=false`` must not build Kubernetes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_on_failure: bool = Field(
        False, description="leave what a failed bring-up made, for a look (then 'lab down')")


#: pydantic's words for a bad option value, as an operator would put them
_PLAIN = {
    "bool_parsing": "expected true or false (yes/no, on/off, 1/0)",
    "float_parsing": "expected a number",
    "int_parsing": "expected a whole number",
    "greater_than": "must be greater than 0",
}


def new_run_id() -> str:
    """A run's id: when it started and a random tail (tags every resource a run makes)."""
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def parse_key_values(items: Any, flag: str) -> dict[str, str]:
    """``KEY=VALUE`` strings (as given to ``flag``) into a dict; a malformed one is an error."""
    options: dict[str, str] = {}
    for item in items or ():
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            raise ProvisionerError(f"{flag} expects KEY=VALUE, got {item!r}")
        options[key.strip()] = value
    return options


def describe_options(model: type[ProvisionerOptions]) -> list[tuple[str, str, str]]:
    """(key, default, description) of every option of a model, for ``--help-options``."""
    rows = []
    for key, info in model.model_fields.items():
        default = "(required)" if info.is_required() else repr(info.default)
        rows.append((key, default, info.description or ""))
    return rows


@dataclass
class ProvisionConfig:
    """What a provisioner is asked to build."""

    run_id: str
    state_dir: Path
    inventory: Path | None = None
    hosts: int = 3
    options: dict[str, str] = field(default_factory=dict)


class Provisioner(ABC):
    """Turns a config into a Lab, tears it down, and controls services for faults.

    The core never names a provisioner: it asks the class (``owns_state_dir``, ``down``,
    ``simulated_reboot``). Extra ``stackcheck lab`` subcommands come from the
    ``stackcheck.lab_commands`` entry-point group.
    """

    name: ClassVar[str] = "base"
    #: None: reboot() restarts the host for real. Otherwise how the reboot is simulated, in
    #: words for reports and skips; the atomic suite then reboots without --allow-reboot.
    simulated_reboot: ClassVar[str | None] = None
    #: the ``--option`` keys this provisioner accepts (see :class:`ProvisionerOptions`)
    options_model: ClassVar[type[ProvisionerOptions]] = ProvisionerOptions

    @classmethod
    def parse_options(cls, raw: dict[str, str]) -> ProvisionerOptions:
        """Validate ``--option`` settings: every unknown key or bad value at once, one line
        each naming the key (and, for an unknown one, the keys this provisioner knows)."""
        try:
            return cls.options_model.model_validate(dict(raw))
        except ValidationError as exc:
            known = ", ".join(cls.options_model.model_fields)
            lines = []
            for error in exc.errors():
                key = ".".join(str(part) for part in error["loc"]) or "(options)"
                if error["type"] == "extra_forbidden":
                    lines.append(f"{cls.name}: unknown option {key!r}; known: {known}")
                else:
                    msg = _PLAIN.get(error["type"]) or str(error["msg"]).removeprefix(
                        "Value error, ")
                    lines.append(f"{cls.name}: option {key}={error.get('input')!r}: {msg}")
            raise ProvisionerError("\n".join(lines)) from None

    @classmethod
    def owns_state_dir(cls, state_dir: Path) -> bool:
        """Is ``state_dir`` a lab of this provisioner even without an inventory (a crashed
        bring-up)? Default: the folder holds ``<name>-state.json``."""
        return (Path(state_dir) / f"{cls.name}-state.json").exists()

    def down(self, state_dir: Path, recorded: Lab | None) -> None:
        """``stackcheck lab down``: remove the lab kept in ``state_dir``, after a crash too.

        ``recorded`` is the folder's inventory (None: none was written or it is unreadable).
        Default: destroy() the recorded lab, else abort() what a create() left there.
        """
        if recorded is not None:
            self.destroy(recorded)
        else:
            self.abort(ProvisionConfig(run_id="down", state_dir=Path(state_dir)))

    @abstractmethod
    def create(self, config: ProvisionConfig) -> Lab:
        """Build (or adopt) a lab. ``Lab.owned`` says whether destroy() must remove it."""

    @abstractmethod
    def destroy(self, lab: Lab) -> None:
        """Remove what create() made for this lab; never anything else."""

    def abort(self, config: ProvisionConfig) -> None:  # noqa: B027 - optional hook
        """Remove whatever an interrupted create() left behind (default: nothing to do)."""

    def status(self, lab: Lab) -> dict[str, dict[str, str]]:
        """Per host, per service its roles imply: a state word (active, inactive, failed,
        masked; absent: the host has no such unit). Default: every host at once, one SSH
        command each (the inventory's ``status`` template); a host that cannot be asked
        is left out."""
        from concurrent.futures import ThreadPoolExecutor

        from stackcheck.services import host_states

        with ThreadPoolExecutor(max_workers=max(1, min(32, len(lab.hosts)))) as pool:
            found = dict(zip([h.name for h in lab.hosts],
                             pool.map(lambda h: host_states(lab, h), lab.hosts), strict=True))
        return {name: states for name, states in found.items() if states is not None}

    def service(
        self, lab: Lab, host: Host, service: str, action: str, timeout: float = 60
    ) -> ServiceResult:
        """Stop/start/restart/is_active a service (default: the inventory's command over SSH)."""
        from stackcheck.ssh import host_connection

        control = lab.control_for(host).command(action, service)
        command = f"timeout {int(timeout)} sh -c {shlex.quote(control)}"
        result = host_connection(lab, host).run(command)
        return ServiceResult(host.name, command, result.rc, result.stdout, result.stderr)

    def inactive(self, lab: Lab, host: Host, services: list[str], timeout: float = 0.0,
                 interval: float = 1.0) -> list[str]:
        """Those of ``services`` that are not active on ``host``. With ``timeout``: wait
        (bounded) until every one is active; those still inactive at the deadline.

        Default: ONE command over SSH, however many services and however long the wait: it
        asks each service's ``is_active`` template and, while one is inactive, asks again
        every ``interval`` s on the host itself until ``timeout`` (a new SSH command per
        poll and service costs both ends far more CPU than the question). The wait is
        recorded like every ``wait_for`` (the slowest-waits report).
        """
        from stackcheck.errors import command_failure
        from stackcheck.ssh import host_connection
        from stackcheck.waits import record_wait

        if not services:
            return []
        control = lab.control_for(host)
        asks = "\n".join(
            f"timeout 30 sh -c {shlex.quote(control.command('is_active', s))} "
            f'>/dev/null 2>&1 </dev/null || left="$left {i}"'
            for i, s in enumerate(services))
        # the host's clock counts whole seconds: one more keeps the wait at least ``timeout``
        script = (f"end=$(( $(date +%s) + {math.ceil(timeout) + 1 if timeout else 0} )); "
                  "polls=0\n"
                  "while :; do\n  left=; polls=$((polls + 1))\n"
                  f"{asks}\n"
                  '  if [ -z "$left" ] || [ "$(date +%s)" -ge "$end" ]; then\n'
                  '    echo "polls=$polls inactive=$left"; exit 0\n  fi\n'
                  f"  sleep {interval:g}\ndone")
        command = f"timeout {math.ceil(timeout) + 60} sh -c {shlex.quote(script)}"
        started, start = time.time(), time.monotonic()
        result = host_connection(lab, host).run(command)
        last = (result.stdout.strip().splitlines() or [""])[-1]
        if result.rc != 0 or not last.startswith("polls="):
            raise ProvisionerError(command_failure(
                f"is the service active? ({', '.join(services)})", result.rc, result.stdout,
                result.stderr, host=host.name))
        polls, _, left = last.partition(" inactive=")
        inactive = [services[int(i)] for i in left.split()]
        if timeout:
            record_wait(f"{host.name}'s services {', '.join(services)} to be active",
                        time.monotonic() - start, not inactive, int(polls.split("=")[1]),
                        interval, timeout, started)
        return inactive

    def reboot(self, lab: Lab, host: Host, timeout: float = 600) -> None:
        """Reboot a host and return once it is back (new boot id)."""
        from stackcheck.ssh import host_connection, reconnect, run_checked
        from stackcheck.waits import NotYet, wait_for

        # plain `cat`: host.file() would first run testinfra's OS detection (3 commands) on
        # every fresh connection
        read_boot_id = "cat /proc/sys/kernel/random/boot_id"
        conn = host_connection(lab, host)
        before = run_checked(conn, host.name, read_boot_id).strip()
        conn.run(lab.control_for(host).reboot)

        def new_boot_id() -> bool | NotYet:
            try:
                now = run_checked(reconnect(lab, host), host.name, read_boot_id).strip()
            except Exception as exc:  # noqa: BLE001 - host is down while it reboots
                return NotYet(f"no SSH ({type(exc).__name__}: {exc})"[:200])
            return now != before or NotYet(f"boot id still {before}")

        wait_for(new_boot_id, timeout=timeout, interval=0.5, what=f"{host.name} to reboot")


ENTRY_POINT_GROUP = "stackcheck.provisioners"
#: ``lab up`` without --provisioner, and ``lab down`` on a folder no provisioner claims
DEFAULT_PROVISIONER = "local"
#: the one that adopts a running lab from an inventory file (--inventory)
INVENTORY_PROVISIONER = "existing"


def available() -> list[str]:
    """Names of every registered provisioner."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def provisioner_class(name: str) -> type[Provisioner]:
    """The class registered as ``name`` (loaded, not instantiated)."""
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        names = ", ".join(available()) or "none"
        raise ProvisionerError(f"unknown provisioner {name!r}; registered: {names}")
    cls = matches[0].load()
    if not (isinstance(cls, type) and issubclass(cls, Provisioner)):
        raise ProvisionerError(
            f"entry point {name!r} ({matches[0].value}) is not a Provisioner subclass"
        )
    return cls


def get_provisioner(name: str) -> Provisioner:
    """Load the provisioner registered as ``name``."""
    return provisioner_class(name)()


def owner_of(state_dir: Path, recorded: Lab | None) -> Provisioner:
    """The provisioner in charge of a state folder: the one its inventory names, else the
    first registered one that claims the folder, else the default one."""
    if recorded is not None:
        return get_provisioner(recorded.provisioner)
    for name in available():
        try:
            cls = provisioner_class(name)
        except ImportError:  # an optional extra (e.g. openstack) is not installed
            continue
        if cls.owns_state_dir(Path(state_dir)):
            return cls()
    return get_provisioner(DEFAULT_PROVISIONER)
