"""One interface to an Atomic host's deployments, two small backends, all over SSH.

:class:`RpmOstree` drives ``rpm-ostree`` (Fedora/CentOS Atomic, CoreOS); :class:`Ostree`
drives plain ``ostree admin`` (hosts without rpm-ostree, such as the local lab, whose hosts
run ostree commands through the lab's ``ostree-booted-view`` so that ostree sees them
booted). :func:`backend_for` picks one per host by what the host has installed.

Plain ostree 2022.7 has no ``rollback`` or ``set-default``: :meth:`Ostree.make_default`
deploys the wanted commit again (with the origin of its existing deployment) as the new
default; the booted deployment is always kept, so a rollback before a reboot leaves
``[old, booted]`` exactly like rpm-ostree's.
"""

from __future__ import annotations

import re
import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from stackcheck.atomic.model import Deployment, Status, parse_ostree_status, parse_rpm_ostree_status
from stackcheck.lab import Host, Lab
from stackcheck.ssh import host_connection

#: the environment key (per host) naming the local lab's booted-view wrapper
VIEW_KEY = "ostree_booted_view.{host}"
DOWNGRADE_REFUSED = "chronologically older"


class AtomicError(RuntimeError):
    """An ostree/rpm-ostree operation failed; the message names the host and the command."""


@dataclass(frozen=True)
class Result:
    command: str
    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).strip()


@dataclass(frozen=True)
class UpgradeCheck:
    available: bool
    target: str | None
    detail: str


class Backend(ABC):
    """Deployments of one host: read them, upgrade, roll back, make a commit the default."""

    kind: ClassVar[str] = "base"

    def __init__(self, host: str, connect: Callable[[], Any]) -> None:
        self.host = host
        self._connect = connect

    def run(self, argv: list[str]) -> Result:
        command = shlex.join(argv)
        out = self._connect().run(command)
        return Result(command, out.rc, out.stdout, out.stderr)

    def check(self, argv: list[str], what: str) -> Result:
        result = self.run(argv)
        if result.rc != 0:
            raise AtomicError(f"{self.host}: {what} failed (exit {result.rc}): "
                              f"`{result.command}`: {result.output[-500:]}")
        return result

    def describe(self) -> str:
        return self.kind

    def booted(self) -> Deployment:
        """The booted deployment (raises when the host is not booted into one)."""
        status = self.status()
        if status.booted is None:
            ids = ", ".join(d.id for d in status.deployments) or "none"
            raise AtomicError(f"{self.host}: not booted into an ostree deployment "
                              f"(deployments: {ids})")
        return status.booted

    @abstractmethod
    def status(self) -> Status:
        """Every deployment, default first."""

    @abstractmethod
    def check_upgrade(self) -> UpgradeCheck:
        """Is there a newer commit for the booted deployment's origin?"""

    @abstractmethod
    def upgrade(self) -> Result:
        """Stage the newest commit of the origin as the default deployment."""

    @abstractmethod
    def rollback(self) -> Result:
        """Make the previous deployment the default again (before a reboot)."""

    @abstractmethod
    def upgrade_to_older(self, checksum: str) -> Result:
        """Try to move to an older commit through the upgrade path (must be refused)."""

    @abstractmethod
    def make_default(self, checksum: str, origin: str | None) -> None:
        """Make ``checksum`` the default deployment (for restoring a host)."""

    repo = "/ostree/repo"

    def repo_argv(self, *args: str) -> list[str]:
        """An ``ostree`` command on the host's system repository."""
        return ["ostree", f"--repo={self.repo}", *args]

    def parent_of(self, checksum: str) -> str | None:
        """The parent commit of ``checksum``, if the host's repository knows it."""
        result = self.run(self.repo_argv("rev-parse", f"{checksum}^"))
        parent = result.stdout.strip()
        return parent if result.rc == 0 and re.fullmatch(r"[0-9a-f]{64}", parent) else None


class RpmOstree(Backend):
    """rpm-ostree: ``status --json``, ``upgrade``, ``rollback``, ``deploy``."""

    kind = "rpm-ostree"

    def status(self) -> Status:
        result = self.check(["rpm-ostree", "status", "--json"], "reading deployments")
        return parse_rpm_ostree_status(result.stdout)

    def check_upgrade(self) -> UpgradeCheck:
        result = self.run(["rpm-ostree", "upgrade", "--check", "--unchanged-exit-77"])
        if result.rc == 77:
            return UpgradeCheck(False, None, "rpm-ostree upgrade --check: no update available")
        if result.rc != 0:
            raise AtomicError(f"{self.host}: `{result.command}` failed (exit {result.rc}): "
                              f"{result.output[-500:]}")
        m = re.search(r"Commit: ([0-9a-f]{64})", result.stdout)
        return UpgradeCheck(True, m[1] if m else None, result.stdout.strip())

    def upgrade(self) -> Result:
        return self.check(["rpm-ostree", "upgrade"], "upgrade")

    def rollback(self) -> Result:
        return self.check(["rpm-ostree", "rollback"], "rollback")

    def upgrade_to_older(self, checksum: str) -> Result:
        return self.run(["rpm-ostree", "deploy", "--disallow-downgrade", checksum])

    def make_default(self, checksum: str, origin: str | None) -> None:
        status = self.status()
        booted, rollback = status.booted, status.rollback
        if status.default and status.default.checksum == checksum:
            return
        if booted and booted.checksum == checksum:
            self.check(["rpm-ostree", "cleanup", "--pending"], "dropping the pending deployment")
        elif rollback and rollback.checksum == checksum and status.pending is None:
            self.rollback()
        else:
            self.check(["rpm-ostree", "deploy", checksum], f"deploying {checksum}")


class Ostree(Backend):
    """Plain ``ostree admin``, optionally through a wrapper that makes the host look booted."""

    kind = "ostree"

    def __init__(self, host: str, connect: Callable[[], Any], sysroot: str = "/",
                 view: str | None = None) -> None:
        super().__init__(host, connect)
        self.view = view
        # inside the booted view (and on a real host) the sysroot is "/"
        self.sysroot = "/" if view else (sysroot.rstrip("/") or "/")
        self.repo = ("" if self.sysroot == "/" else self.sysroot) + "/ostree/repo"

    def describe(self) -> str:
        if self.view:
            return f"ostree (through the lab's booted view {self.view})"
        return "ostree" if self.sysroot == "/" else f"ostree (sysroot {self.sysroot})"

    def _prefix(self) -> list[str]:
        return [self.view] if self.view else []

    def _admin(self, *args: str) -> list[str]:
        sysroot = [] if self.sysroot == "/" else [f"--sysroot={self.sysroot}"]
        return ["ostree", "admin", *args, *sysroot]

    def admin(self, *args: str) -> list[str]:
        """An ``ostree admin`` command, through the booted view if the host has one."""
        return [*self._prefix(), *self._admin(*args)]

    def repo_argv(self, *args: str) -> list[str]:
        return [*self._prefix(), *super().repo_argv(*args)]

    def status(self) -> Status:
        return parse_ostree_status(self.check(self.admin("status"), "reading deployments").stdout)

    def check_upgrade(self) -> UpgradeCheck:
        booted = self.booted()
        if not booted.origin:
            raise AtomicError(f"{self.host}: the booted deployment {booted.id} has no origin "
                              "refspec to upgrade from")
        self.check(self.admin("upgrade", "--pull-only", f"--os={booted.osname}"),
                   f"pulling {booted.origin}")
        target = self.check(self.repo_argv("rev-parse", booted.origin),
                            f"resolving {booted.origin}").stdout.strip()
        if target == booted.checksum:
            return UpgradeCheck(False, None, f"{booted.origin} is at the booted commit {target}")
        return UpgradeCheck(True, target, f"{booted.origin} is at {target}")

    def upgrade(self) -> Result:
        return self.check(self.admin("upgrade", f"--os={self.booted().osname}"), "upgrade")

    def rollback(self) -> Result:
        status = self.status()
        booted = status.booted
        if booted is None:
            raise AtomicError(f"{self.host}: rollback: not booted into an ostree deployment")
        target = booted if status.pending else status.rollback
        if target is None:
            raise AtomicError(f"{self.host}: rollback: there is no rollback deployment")
        return self._to_default(status, target)

    def upgrade_to_older(self, checksum: str) -> Result:
        booted = self.booted()
        return self.run(self.admin("upgrade", f"--os={booted.osname}",
                                   f"--override-commit={checksum}"))

    def make_default(self, checksum: str, origin: str | None) -> None:
        status = self.status()
        if status.default and status.default.checksum == checksum:
            return
        existing = status.with_checksum(checksum)
        if existing:
            booted = status.booted
            self._to_default(status, booted if booted in existing else existing[0])
            return
        osname = (status.booted or status.default or Deployment("", "")).osname
        if not origin or not osname:
            raise AtomicError(f"{self.host}: cannot deploy {checksum}: no origin refspec/osname")
        # pull the commit, then deploy it with an origin that follows the refspec again
        # (``upgrade --override-commit`` alone would pin the commit in the origin)
        pull = self._admin("upgrade", "--pull-only", "--allow-downgrade", f"--os={osname}",
                           f"--override-commit={checksum}")
        deploy = self._admin("deploy", f"--os={osname}", checksum)
        script = "\n".join([
            'set -e; o=$(mktemp); trap \'rm -f "$o"\' EXIT',
            f'printf "[origin]\\nrefspec=%s\\n" {shlex.quote(origin)} > "$o"',
            shlex.join(pull),
            f'{shlex.join(deploy)} --origin-file="$o"',
        ])
        self.check([*self._prefix(), "sh", "-c", script], f"deploying {checksum}")

    def _to_default(self, status: Status, target: Deployment) -> Result:
        """Make an existing deployment's commit the default."""
        booted = status.booted
        if booted is not None and target.id == booted.id:
            # cancel what is pending: undeploy every deployment ahead of the booted one
            index = status.deployments.index(booted)
            result = Result("", 0, "", "")
            for _ in range(index):
                result = self.check(self.admin("undeploy", "0"), "undeploying the pending "
                                    "deployment")
            return result
        origin_file = (f"{'' if self.sysroot == '/' else self.sysroot}/ostree/deploy/"
                       f"{target.osname}/deploy/{target.id}.origin")
        return self.check(self.admin("deploy", f"--os={target.osname}",
                                     f"--origin-file={origin_file}", target.checksum),
                          f"deploying {target.checksum} as the default")


#: which of rpm-ostree / ostree each host has (asked once per process)
_TOOLS: dict[tuple[str, str, str], frozenset[str]] = {}


def backend_for(lab: Lab, host: Host) -> Backend:
    """The backend for ``host``: rpm-ostree if it has it, else plain ostree."""

    def connect() -> Any:
        return host_connection(lab, host)

    key = (lab.name, host.name, host.address)
    if key not in _TOOLS:
        found = connect().run("command -v rpm-ostree ostree").stdout.split()
        _TOOLS[key] = frozenset(path.rsplit("/", 1)[-1] for path in found)
    tools = _TOOLS[key]
    if "rpm-ostree" in tools:
        return RpmOstree(host.name, connect)
    if "ostree" in tools:
        view = lab.environment.get(VIEW_KEY.format(host=host.name))
        return Ostree(host.name, connect, sysroot=host.ostree_sysroot, view=view)
    raise AtomicError(f"{host.name}: has the atomic role but neither rpm-ostree nor ostree "
                      "is installed")
