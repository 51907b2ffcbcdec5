"""What an Atomic host reports about its deployments, parsed from ostree, rpm-ostree or bootc.

Pure functions and data, no SSH: :func:`parse_ostree_status` reads ``ostree admin status``,
:func:`parse_rpm_ostree_status` reads ``rpm-ostree status --json``,
:func:`parse_bootc_status` reads ``bootc status --json`` (or its YAML). Deployments are kept
in boot order (the default first), as the tools list them.

A deployment follows either an ostree ref (``origin refspec``) or a container image
(``container-image-reference``, Fedora CoreOS / RHEL image mode / bootc); :attr:`Deployment.source`
is whichever it is, and :attr:`Deployment.identity` is what "the same OS" means across hosts:
the image digest where there is one (an image's ostree merge commit is made on each host),
else the commit checksum.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

#: origin kinds: an ostree ref, a container image, an origin ostree cannot name, none at all
REFSPEC, IMAGE, UNKNOWN, NONE = "refspec", "image", "unknown", "none"
BOOTC_APIS = ("org.containers.bootc/v1", "org.containers.bootc/v1alpha1")


class StatusFormatError(ValueError):
    """A status output that is not in the format its tool writes."""


@dataclass(frozen=True)
class Deployment:
    """One deployment of an ostree sysroot."""

    osname: str
    checksum: str
    serial: int | None = None
    version: str | None = None
    origin: str | None = None
    booted: bool = False
    timestamp: int | None = None
    image: str | None = None  # container image reference (rpm-ostree/bootc)
    digest: str | None = None  # the image's manifest digest
    origin_kind: str = REFSPEC
    staged: bool = False
    finalization_locked: bool = False
    soft_reboot: bool = False
    pinned: bool = False

    @property
    def id(self) -> str:
        """``checksum.serial`` (ostree's name for the deployment directory)."""
        return self.checksum if self.serial is None else f"{self.checksum}.{self.serial}"

    @property
    def source(self) -> str | None:
        """What the deployment follows: its origin refspec or its container image."""
        return self.image or self.origin

    @property
    def identity(self) -> str:
        """The image digest where there is one, else the commit checksum."""
        return self.digest or self.checksum

    def describe(self) -> str:
        version = f" (version {self.version})" if self.version else ""
        image = f" (image {self.image}, {self.digest})" if self.image and self.digest else ""
        return f"{self.checksum}{version}{image}"

    def follows(self) -> str:
        """The origin in words, for messages."""
        if self.source:
            return self.source
        return {UNKNOWN: "an origin ostree cannot name (<unknown origin type>)",
                NONE: "no origin"}.get(self.origin_kind, "no origin refspec")

    def flags(self) -> list[str]:
        return [name for name, on in (("staged", self.staged),
                                      ("finalization locked", self.finalization_locked),
                                      ("soft-reboot", self.soft_reboot),
                                      ("pinned", self.pinned)) if on]


@dataclass(frozen=True)
class Status:
    """Every deployment of a host, default first, and who drives its updates."""

    deployments: list[Deployment] = field(default_factory=list)
    update_driver: str | None = None  # e.g. "Zincati (zincati.service)"

    @property
    def default(self) -> Deployment | None:
        return self.deployments[0] if self.deployments else None

    @property
    def booted(self) -> Deployment | None:
        return next((d for d in self.deployments if d.booted), None)

    @property
    def pending(self) -> Deployment | None:
        """What the next boot runs when it is not the booted deployment (staged or not)."""
        default = self.default
        return default if default is not None and not default.booted else None

    @property
    def rollback(self) -> Deployment | None:
        """The deployment after the booted one: what a rollback returns to."""
        for index, dep in enumerate(self.deployments):
            if dep.booted:
                return self.deployments[index + 1] if index + 1 < len(self.deployments) else None
        return None

    def with_checksum(self, checksum: str) -> list[Deployment]:
        return [d for d in self.deployments if d.checksum == checksum]

    def role(self, dep: Deployment) -> str:
        marks = [m for m, on in (("booted", dep.booted), ("default", dep is self.default),
                                 ("pending", dep is self.pending),
                                 ("rollback", dep is self.rollback)) if on]
        return ", ".join(marks + dep.flags())

    def summary(self) -> list[dict[str, str]]:
        """Rows for a report table."""
        return [{"index": str(index), "deployment": dep.id, "version": dep.version or "",
                 "origin": dep.follows(), "digest": dep.digest or "",
                 "state": self.role(dep)}
                for index, dep in enumerate(self.deployments)]

    def layout(self) -> list[tuple[str, str | None, bool]]:
        """(deployment id, origin, booted) in boot order: what "as it was" compares."""
        return [(d.id, d.source, d.booted) for d in self.deployments]


# --- ostree admin status (text) ----------------------------------------------------------

_HEAD_RE = re.compile(r"^([* ]) (\S+) ([0-9a-f]{64})\.(\d+)((?: \([a-z -]+\))*)\s*$")
_MARK_RE = re.compile(r"\(([a-z -]+)\)")
_VERSION_RE = re.compile(r"^\s+Version: (\S+)")
_ORIGIN_RE = re.compile(r"^\s+origin refspec: (\S+)")
_ORIGIN_OTHER_RE = re.compile(r"^\s+origin: (.+?)\s*$")
_PINNED_RE = re.compile(r"^\s+Pinned: yes")


def parse_ostree_status(text: str) -> Status:
    """Parse ``ostree admin status`` (ostree 2018-2025 text format).

    Head lines carry at most one of ``(finalization locked)``, ``(staged)``, ``(pending)``,
    ``(rollback)`` and maybe ``(soft-reboot)``; an origin is ``origin refspec: R``,
    ``origin: <unknown origin type>`` (e.g. a container image origin) or ``origin: none``.
    """
    deployments: list[dict[str, Any]] = []
    for line in text.splitlines():
        head = _HEAD_RE.match(line)
        if head:
            marks = set(_MARK_RE.findall(head[5] or ""))
            deployments.append({
                "osname": head[2], "checksum": head[3], "serial": int(head[4]),
                "booted": head[1] == "*", "origin_kind": NONE,
                "staged": "staged" in marks or "finalization locked" in marks,
                "finalization_locked": "finalization locked" in marks,
                "soft_reboot": "soft-reboot" in marks})
            continue
        if not deployments:
            continue
        current = deployments[-1]
        if m := _VERSION_RE.match(line):
            current["version"] = m[1]
        elif m := _ORIGIN_RE.match(line):
            current["origin"], current["origin_kind"] = m[1], REFSPEC
        elif m := _ORIGIN_OTHER_RE.match(line):
            current["origin_kind"] = NONE if m[1] == "none" else UNKNOWN
        elif _PINNED_RE.match(line):
            current["pinned"] = True
    return Status([Deployment(**d) for d in deployments])


# --- rpm-ostree status --json ------------------------------------------------------------


def _driver(data: dict[str, Any]) -> str | None:
    driver = data.get("update-driver")
    if not isinstance(driver, dict) or not driver.get("driver-name"):
        return None
    unit = driver.get("driver-sd-unit")
    return f"{driver['driver-name']}" + (f" ({unit})" if unit else "")


def parse_rpm_ostree_status(text: str) -> Status:
    """Parse ``rpm-ostree status --json`` (ref origins, container images, staged, driver)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StatusFormatError(f"rpm-ostree status --json is not JSON: {exc}") from None
    deployments = []
    for dep in data.get("deployments", []):
        image = dep.get("container-image-reference")
        origin = dep.get("origin")
        kind = IMAGE if image else (REFSPEC if origin else NONE)
        deployments.append(Deployment(
            osname=str(dep.get("osname", "")),
            checksum=str(dep["checksum"]),
            serial=dep.get("serial"),
            version=dep.get("version"),
            origin=origin,
            booted=bool(dep.get("booted")),
            timestamp=dep.get("timestamp"),
            image=image,
            digest=dep.get("container-image-reference-digest"),
            origin_kind=kind,
            staged=bool(dep.get("staged")),
            finalization_locked=bool(dep.get("finalization-locked")),
            pinned=bool(dep.get("pinned")),
        ))
    return Status(deployments, update_driver=_driver(data))


# --- bootc status --json ------------------------------------------------------------------


def _bootc_entry(entry: dict[str, Any] | None, booted: bool, staged: bool) -> Deployment | None:
    if not entry:
        return None
    ostree = entry.get("ostree") or {}
    status = entry.get("image") or {}
    spec = status.get("image") or {}
    image = spec.get("image")
    return Deployment(
        osname=str(ostree.get("stateroot", "")),
        checksum=str(ostree.get("checksum", "")),
        serial=ostree.get("deploySerial"),
        version=(str(status["version"]) if status.get("version") is not None else None),
        booted=booted,
        image=image,
        digest=status.get("imageDigest"),
        origin_kind=IMAGE if image else UNKNOWN,
        staged=staged,
        pinned=bool(entry.get("pinned")),
    )


def parse_bootc_status(text: str) -> Status:
    """Parse ``bootc status --json`` (``org.containers.bootc/v1``; YAML output too).

    bootc names three slots, not a list: staged (the next boot), booted, rollback. With
    ``rollbackQueued`` the rollback boots next, before the booted one.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StatusFormatError(f"bootc status is neither JSON nor YAML: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != "BootcHost":
        raise StatusFormatError("bootc status: expected kind BootcHost")
    if data.get("apiVersion") not in BOOTC_APIS:
        raise StatusFormatError(f"bootc status: apiVersion {data.get('apiVersion')!r} is not "
                                f"one stackcheck reads ({', '.join(BOOTC_APIS)})")
    status = data.get("status") or {}
    staged = _bootc_entry(status.get("staged"), booted=False, staged=True)
    booted = _bootc_entry(status.get("booted"), booted=True, staged=False)
    rollback = _bootc_entry(status.get("rollback"), booted=False, staged=False)
    order = [staged, rollback, booted] if status.get("rollbackQueued") else [
        staged, booted, rollback]
    return Status([d for d in order if d is not None])


def bootc_cached_update(text: str) -> str | None:
    """The digest of the update ``bootc upgrade --check`` found (the booted entry's
    ``cachedUpdate``), or None."""
    data = yaml.safe_load(text) or {}
    booted = ((data.get("status") or {}).get("booted") or {})
    cached = booted.get("cachedUpdate") or {}
    return cached.get("imageDigest")


def without_serials(status: Status) -> Status:
    """The same deployments with no serials (to compare where serials cannot be kept)."""
    return Status([replace(d, serial=None) for d in status.deployments], status.update_driver)


def majority(values: dict[str, str]) -> tuple[str | None, dict[str, list[str]]]:
    """The value most hosts have (None on a tie) and the hosts per value.

    ``values`` maps host name -> value (e.g. the booted checksum).
    """
    groups: dict[str, list[str]] = {}
    for host, value in sorted(values.items()):
        groups.setdefault(value, []).append(host)
    counts = Counter({value: len(hosts) for value, hosts in groups.items()}).most_common()
    if not counts:
        return None, groups
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None, groups
    return counts[0][0], groups
