"""What an Atomic host reports about its deployments, parsed from ostree or rpm-ostree.

Pure functions and data, no SSH: :func:`parse_ostree_status` reads ``ostree admin status``,
:func:`parse_rpm_ostree_status` reads ``rpm-ostree status --json``. Deployments are kept in
boot order (the default first), as both tools list them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


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

    @property
    def id(self) -> str:
        """``checksum.serial`` (ostree's name for the deployment directory)."""
        return self.checksum if self.serial is None else f"{self.checksum}.{self.serial}"

    def describe(self) -> str:
        version = f" (version {self.version})" if self.version else ""
        return f"{self.checksum}{version}"


@dataclass(frozen=True)
class Status:
    """Every deployment of a host, default first."""

    deployments: list[Deployment] = field(default_factory=list)

    @property
    def default(self) -> Deployment | None:
        return self.deployments[0] if self.deployments else None

    @property
    def booted(self) -> Deployment | None:
        return next((d for d in self.deployments if d.booted), None)

    @property
    def pending(self) -> Deployment | None:
        """The default deployment when it is not the booted one (what the next boot runs)."""
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

    def summary(self) -> list[dict[str, str]]:
        """Rows for a report table."""
        rows = []
        for index, dep in enumerate(self.deployments):
            marks = [m for m, on in (("booted", dep.booted), ("default", index == 0),
                                     ("rollback", dep is self.rollback)) if on]
            rows.append({"index": str(index), "deployment": dep.id, "version": dep.version or "",
                         "origin": dep.origin or "", "state": ", ".join(marks)})
        return rows


_HEAD_RE = re.compile(r"^([* ]) (\S+) ([0-9a-f]{64})\.(\d+)(?: \((\w+)\))?\s*$")
_VERSION_RE = re.compile(r"^\s+Version: (\S+)")
_ORIGIN_RE = re.compile(r"^\s+origin refspec: (\S+)")


def parse_ostree_status(text: str) -> Status:
    """Parse ``ostree admin status`` (ostree 2018-2023 text format)."""
    deployments: list[dict[str, Any]] = []
    for line in text.splitlines():
        head = _HEAD_RE.match(line)
        if head:
            deployments.append({"osname": head[2], "checksum": head[3], "serial": int(head[4]),
                                "booted": head[1] == "*"})
            continue
        if not deployments:
            continue
        if m := _VERSION_RE.match(line):
            deployments[-1]["version"] = m[1]
        elif m := _ORIGIN_RE.match(line):
            deployments[-1]["origin"] = m[1]
    return Status([Deployment(**d) for d in deployments])


def parse_rpm_ostree_status(text: str) -> Status:
    """Parse ``rpm-ostree status --json``."""
    data = json.loads(text)
    deployments = []
    for dep in data.get("deployments", []):
        deployments.append(Deployment(
            osname=str(dep.get("osname", "")),
            checksum=str(dep["checksum"]),
            serial=dep.get("serial"),
            version=dep.get("version"),
            origin=dep.get("origin"),
            booted=bool(dep.get("booted")),
            timestamp=dep.get("timestamp"),
        ))
    return Status(deployments)


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
