"""One interface to an Atomic host's deployments, two small backends, all over SSH.

:class:`RpmOstree` drives ``rpm-ostree`` (Fedora/CentOS Atomic, CoreOS); :class:`Ostree`
drives plain ``ostree admin`` (hosts without rpm-ostree, such as the local lab, whose hosts
run ostree commands through the lab's ``ostree-booted-view`` so that ostree sees them
booted). :func:`backend_for` picks one per host by what the host has installed.

Plain ostree 2022.7 has no ``rollback`` or ``set-default``: :meth:`Ostree.make_default`
deploys the wanted commit again (with the origin of its existing deployment) as the new
default; the booted deployment is always kept, so a rollback before a reboot leaves
``[old, booted]`` exactly like rpm-ostree's. A deployment made the default again keeps its
``checksum.serial`` (it is undeployed and deployed anew while no other deployment of that
commit exists), so runs do not make serials grow.

:class:`Bootc` reads ``bootc status --json`` on hosts with bootc and no rpm-ostree.
Hosts whose updates are driven by an agent (Zincati on Fedora CoreOS) refuse
``rpm-ostree upgrade``/``deploy``/``rollback``: :class:`DriverRefusal` says so in one line,
and ``--bypass-driver`` is passed only when the suite was told to (``bypass_driver``).
Every failure is one line, the host's own last word: ``h2: upgrade failed: refspec
lab:os/missing not found``; the command and its whole output stay on the exception.
"""

from __future__ import annotations

import re
import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from stackcheck.atomic.model import (
    Deployment,
    Status,
    StatusFormatError,
    bootc_cached_update,
    parse_bootc_status,
    parse_ostree_status,
    parse_rpm_ostree_status,
)
from stackcheck.lab import Host, Lab
from stackcheck.ssh import host_connection

#: the environment key (per host) naming the local lab's booted-view wrapper
VIEW_KEY = "ostree_booted_view.{host}"
DOWNGRADE_REFUSED = "chronologically older"


class AtomicError(RuntimeError):
    """An ostree/rpm-ostree operation failed: one line naming the host and the cause.

    ``command`` and ``output`` keep what ran and everything it printed, for evidence.
    """

    def __init__(self, message: str, command: str = "", output: str = "") -> None:
        super().__init__(message)
        self.command = command
        self.output = output


class DriverRefusal(AtomicError):
    """rpm-ostree refused: the host's updates are driven by an agent such as Zincati."""


DRIVEN_BY = re.compile(r"Updates and deployments are driven by (.+?)\s*$", re.M)
_QUOTED = re.compile(r"'([^'\s]+)'")


def cause(output: str) -> str:
    """The host's own reason, one line: the last ``error:`` line, else the last line.

    ``error: Refspec 'lab:os/missing' not found`` becomes ``refspec lab:os/missing not found``.
    """
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error:")]
    line = (errors or lines or ["(no output)"])[-1]
    line = re.sub(r"^error:\s*", "", line, flags=re.I)
    line = _QUOTED.sub(r"\1", line)
    if len(line) > 1 and line[0].isupper() and line[1].islower():
        line = line[0].lower() + line[1:]
    return line[:300]


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
        self.bypass_driver = False  # pass --bypass-driver to a driven rpm-ostree

    def run(self, argv: list[str]) -> Result:
        command = shlex.join(argv)
        out = self._connect().run(command)
        return Result(command, out.rc, out.stdout, out.stderr)

    def check(self, argv: list[str], what: str) -> Result:
        result = self.run(argv)
        if result.rc != 0:
            raise self.failure(result, what)
        return result

    def failure(self, result: Result, what: str) -> AtomicError:
        """One line for a failed command (the command and output kept on the error)."""
        driver = DRIVEN_BY.search(result.output)
        if driver:
            return DriverRefusal(
                f"{self.host}: {what} refused: updates and deployments are driven by "
                f"{driver[1]} (--atomic-bypass-driver lets the suite bypass it)",
                result.command, result.output)
        return AtomicError(f"{self.host}: {what} failed: {cause(result.output)}",
                           result.command, result.output)

    def describe(self) -> str:
        return self.kind

    def booted(self, status: Status | None = None) -> Deployment:
        """The booted deployment (raises when the host is not booted into one); ``status``:
        one just read (no need to ask the host again)."""
        status = status or self.status()
        if status.booted is None:
            ids = ", ".join(d.id for d in status.deployments) or "none"
            raise AtomicError(f"{self.host}: not booted into an ostree deployment "
                              f"(deployments: {ids})")
        return status.booted

    @abstractmethod
    def status(self) -> Status:
        """Every deployment, default first."""

    # ``status`` of the next three: the host's deployments as just read, if the caller has
    # them (each read is a remote command; some backends need none)

    @abstractmethod
    def check_upgrade(self, status: Status | None = None) -> UpgradeCheck:
        """Is there a newer commit for the booted deployment's origin?"""

    @abstractmethod
    def upgrade(self, status: Status | None = None) -> Result:
        """Stage the newest commit of the origin as the default deployment."""

    @abstractmethod
    def rollback(self, status: Status | None = None) -> Result:
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

    # --- putting deployments back as they were (plain ``ostree admin``, any backend) ---

    sysroot = "/"

    def wrap(self, argv: list[str]) -> list[str]:
        """How a command runs on the host (the local lab wraps it in its booted view)."""
        return argv

    def ostree_admin(self, *args: str) -> list[str]:
        """An ``ostree admin`` command on the host's sysroot (unwrapped)."""
        return ["ostree", "admin", *args]

    def repo_inner(self, *args: str) -> list[str]:
        """An ``ostree`` command on the system repository (unwrapped)."""
        return ["ostree", f"--repo={self.repo}", *args]

    def origin_path(self, dep: Deployment) -> str:
        root = "" if self.sysroot == "/" else self.sysroot
        return f"{root}/ostree/deploy/{dep.osname}/deploy/{dep.id}.origin"

    def origin_text(self, dep: Deployment) -> str:
        """The deployment's origin file as it is (any origin type)."""
        return self.check(self.wrap(["cat", self.origin_path(dep)]),
                          f"reading the origin of {dep.id}").stdout

    def origin_texts(self, deps: list[Deployment]) -> list[str]:
        """The origin files of ``deps``, read by one remote command."""
        if len(deps) < 2:
            return [self.origin_text(d) for d in deps]
        script = 'for f; do cat "$f" || exit; printf "\\0"; done'
        out = self.check(self.wrap(["sh", "-c", script, "sh",
                                    *(self.origin_path(d) for d in deps)]),
                         f"reading the origins of {', '.join(d.id for d in deps)}").stdout
        texts = out.split("\0")[:len(deps)]
        if len(texts) != len(deps):
            raise AtomicError(f"{self.host}: reading {len(deps)} origin files printed "
                              f"{len(texts)}", "origin files", out)
        return texts

    def redeploy(self, osname: str, checksum: str, origin: str, *, as_default: bool,
                 replace: int | None = None) -> None:
        """Deploy ``checksum`` again with the origin file text ``origin``, keeping the other
        deployments; ``as_default=False`` puts it after the booted one (the rollback slot).

        ``replace``: the index of a deployment to undeploy first (so the new one gets its
        serial back). A temporary ref keeps the commit from being pruned meanwhile; a commit
        already pruned is pulled again from the origin's remote.
        """
        keep = f"stackcheck-keep/{checksum}"
        m = re.search(r"^refspec=([^:\s]+):", origin, re.M)
        fetch = (shlex.join(self.repo_inner("pull", m[1], checksum)) if m
                 else f"echo 'commit {checksum} is gone and its origin names no remote' >&2; "
                      "exit 1")
        flags = ["--retain"] + ([] if as_default else ["--not-as-default"])
        lines = [
            "set -e; o=$(mktemp)",
            f"trap '{shlex.join(self.repo_inner('refs', '--delete', keep))} >/dev/null 2>&1;"
            ' rm -f "$o"\' EXIT',
            f'printf %s {shlex.quote(origin)} > "$o"',
            f"{shlex.join(self.repo_inner('show', checksum))} >/dev/null 2>&1 || {fetch}",
            f"{shlex.join(self.repo_inner('refs', '--delete', keep))} >/dev/null 2>&1 || true",
            shlex.join(self.repo_inner("refs", f"--create={keep}", checksum)),
        ]
        if replace is not None:
            lines.append(shlex.join(self.ostree_admin("undeploy", str(replace))))
        deploy = self.ostree_admin("deploy", *flags, f"--os={osname}", checksum)
        lines.append(f'{shlex.join(deploy)} --origin-file="$o"')
        self.check(self.wrap(["sh", "-c", "\n".join(lines)]), f"deploying {checksum} again")

    def undeploy(self, index: int, what: str) -> None:
        self.check(self.wrap(self.ostree_admin("undeploy", str(index))), what)


class RpmOstree(Backend):
    """rpm-ostree: ``status --json``, ``upgrade``, ``rollback``, ``deploy``/``rebase``."""

    kind = "rpm-ostree"

    def _driven(self, *argv: str) -> list[str]:
        """An rpm-ostree command that an update driver refuses, bypassing it if allowed."""
        return ["rpm-ostree", *argv, *(["--bypass-driver"] if self.bypass_driver else [])]

    def status(self) -> Status:
        result = self.check(["rpm-ostree", "status", "--json"], "reading deployments")
        try:
            return parse_rpm_ostree_status(result.stdout)
        except StatusFormatError as exc:
            raise AtomicError(f"{self.host}: {exc}", result.command, result.output) from None

    def check_upgrade(self, status: Status | None = None) -> UpgradeCheck:
        result = self.run(["rpm-ostree", "upgrade", "--check", "--unchanged-exit-77"])
        if result.rc == 77:
            return UpgradeCheck(False, None, "rpm-ostree upgrade --check: no update available")
        if result.rc != 0:
            raise self.failure(result, "checking for an upgrade")
        m = re.search(r"Commit: ([0-9a-f]{64})", result.stdout)
        return UpgradeCheck(True, m[1] if m else None, result.stdout.strip())

    def upgrade(self, status: Status | None = None) -> Result:
        return self.check(self._driven("upgrade"), "upgrade")

    def rollback(self, status: Status | None = None) -> Result:
        return self.check(self._driven("rollback"), "rollback")

    def upgrade_to_older(self, checksum: str) -> Result:
        return self.run(self._driven("deploy", "--disallow-downgrade", checksum))

    def make_default(self, checksum: str, origin: str | None) -> None:
        status = self.status()
        booted, rollback = status.booted, status.rollback
        if status.default and status.default.checksum == checksum:
            return
        target = next(iter(status.with_checksum(checksum)), None)
        if booted and booted.checksum == checksum:
            self.check(["rpm-ostree", "cleanup", "--pending"], "dropping the pending deployment")
        elif rollback and rollback.checksum == checksum and status.pending is None:
            self.rollback()
        elif target is not None and target.image:
            # an image's merge commit is not on any remote: deploy the image itself, pinned
            image = pinned_image(target.image, target.digest)
            self.check(self._driven("rebase", image), f"rebasing onto {image}")
        else:
            self.check(self._driven("deploy", checksum), f"deploying {checksum}")


def pinned_image(reference: str, digest: str | None) -> str:
    """An ``ostree-…-image:`` reference pinned to ``digest`` (unchanged if already pinned)."""
    if digest is None or "@sha256:" in reference:
        return reference
    head, _, last = reference.rpartition("/")
    name = last.split(":", 1)[0]
    return f"{head}/{name}@{digest}" if head else f"{name}@{digest}"


class Bootc(Backend):
    """bootc (image-mode hosts without rpm-ostree): ``bootc status --json``, upgrade, rollback."""

    kind = "bootc"

    def status(self) -> Status:
        result = self.check(["bootc", "status", "--json"], "reading deployments")
        try:
            return parse_bootc_status(result.stdout)
        except StatusFormatError as exc:
            raise AtomicError(f"{self.host}: {exc}", result.command, result.output) from None

    def check_upgrade(self, status: Status | None = None) -> UpgradeCheck:
        """``bootc upgrade --check`` records what it found as the booted entry's
        ``cachedUpdate``: an update is available when its digest is not the booted one."""
        found = self.check(["bootc", "upgrade", "--check"], "checking for an upgrade").output
        raw = self.check(["bootc", "status", "--json"], "reading deployments").stdout
        digest = bootc_cached_update(raw)
        booted = parse_bootc_status(raw).booted
        if digest is None or (booted is not None and digest == booted.digest):
            return UpgradeCheck(False, None, found or "bootc upgrade --check: no update")
        return UpgradeCheck(True, None, f"{found}\nupdate: {digest}".strip())

    def upgrade(self, status: Status | None = None) -> Result:
        return self.check(["bootc", "upgrade"], "upgrade")

    def rollback(self, status: Status | None = None) -> Result:
        return self.check(["bootc", "rollback"], "rollback")

    def upgrade_to_older(self, checksum: str) -> Result:
        raise AtomicError(f"{self.host}: bootc deploys images, not commits: no downgrade by "
                          "commit to try")

    def make_default(self, checksum: str, origin: str | None) -> None:
        status = self.status()
        if status.default and status.default.checksum == checksum:
            return
        if status.rollback and status.rollback.checksum == checksum:
            self.rollback()
            return
        target = next(iter(status.with_checksum(checksum)), None)
        if target is None or not target.image:
            raise AtomicError(f"{self.host}: cannot make {checksum} the default: bootc "
                              "knows no image for it")
        image = pinned_image(target.image, target.digest)
        self.check(["bootc", "switch", image], f"switching to {image}")


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

    def wrap(self, argv: list[str]) -> list[str]:
        return [*self._prefix(), *argv]

    def ostree_admin(self, *args: str) -> list[str]:
        return self._admin(*args)

    def status(self) -> Status:
        return parse_ostree_status(self.check(self.admin("status"), "reading deployments").stdout)

    def check_upgrade(self, status: Status | None = None) -> UpgradeCheck:
        booted = self.booted(status)
        if not booted.origin:
            raise AtomicError(f"{self.host}: the booted deployment {booted.id} has no origin "
                              "refspec to upgrade from")
        self.check(self.admin("upgrade", "--pull-only", f"--os={booted.osname}"),
                   f"upgrade of {booted.origin}")
        target = self.check(self.repo_argv("rev-parse", booted.origin),
                            f"resolving {booted.origin}").stdout.strip()
        if target == booted.checksum:
            return UpgradeCheck(False, None, f"{booted.origin} is at the booted commit {target}")
        return UpgradeCheck(True, target, f"{booted.origin} is at {target}")

    def upgrade(self, status: Status | None = None) -> Result:
        return self.check(self.admin("upgrade", f"--os={self.booted(status).osname}"),
                          "upgrade")

    def rollback(self, status: Status | None = None) -> Result:
        status = status or self.status()
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
        # undeploy it and deploy it anew as the default: it keeps its checksum.serial
        origin = self.origin_text(target)
        self.redeploy(target.osname, target.checksum, origin, as_default=True,
                      replace=status.deployments.index(target))
        return Result(f"redeploy {target.id} as the default", 0, "", "")


#: which of rpm-ostree / bootc / ostree each host has (asked once per process)
_TOOLS: dict[tuple[str, str, str], frozenset[str]] = {}


def backend_for(lab: Lab, host: Host, bypass_driver: bool = False) -> Backend:
    """The backend for ``host``: rpm-ostree if it has it, else bootc, else plain ostree.

    ``bypass_driver``: let rpm-ostree act although an update driver (Zincati) owns updates.
    """

    def connect() -> Any:
        return host_connection(lab, host)

    key = (lab.name, host.name, host.address)
    if key not in _TOOLS:
        found = connect().run("command -v rpm-ostree bootc ostree").stdout.split()
        _TOOLS[key] = frozenset(path.rsplit("/", 1)[-1] for path in found)
    tools = _TOOLS[key]
    backend: Backend
    if "rpm-ostree" in tools:
        backend = RpmOstree(host.name, connect)
        backend.bypass_driver = bypass_driver
        return backend
    if "bootc" in tools:
        return Bootc(host.name, connect)
    if "ostree" in tools:
        view = lab.environment.get(VIEW_KEY.format(host=host.name))
        return Ostree(host.name, connect, sysroot=host.ostree_sysroot, view=view)
    raise AtomicError(f"{host.name}: has the atomic role but none of rpm-ostree, bootc, ostree "
                      "is installed")
