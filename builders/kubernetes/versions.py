"""Which binaries, which Kubernetes versions, and how a version is stamped into a build."""

from __future__ import annotations

import re
from dataclasses import dataclass

KUBE_BINARIES: tuple[str, ...] = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kubectl",
    "kube-proxy",
)
ALL_BINARIES: tuple[str, ...] = (*KUBE_BINARIES, "pause")

#: Minor versions of Kubernetes 1.x the lab accepts from PATH or a given folder.
SUPPORTED_MINORS = range(20, 30)

_VERSION = re.compile(r"\bv?(\d+)\.(\d+)\.(\d+)\b")


@dataclass(frozen=True)
class Recipe:
    """Where the sources and the Go toolchain for one buildable version come from."""

    version: str
    source_package: str
    source_suite: str
    go_series: str
    go_suite: str
    pause_version: str

    @property
    def go_packages(self) -> tuple[str, str]:
        return (f"golang-{self.go_series}-go", f"golang-{self.go_series}-src")


#: Versions that can be built offline: Debian 12 ships Kubernetes 1.20.2's full source tree;
#: it needs Go 1.15 (newer Go risks run-time crashes from the vendored reflect2 1.0.1).
RECIPES: dict[str, Recipe] = {
    "v1.20.2": Recipe("v1.20.2", "kubernetes", "bookworm", "1.15", "bullseye", "v3.4"),
}


def parse_version(text: str) -> tuple[int, int, int] | None:
    """The first ``vMAJOR.MINOR.PATCH`` in ``text`` (e.g. ``Kubernetes v1.20.2``), or None."""
    match = _VERSION.search(text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def is_supported(version: tuple[int, int, int] | None) -> bool:
    """True for Kubernetes 1.20 to 1.29."""
    return version is not None and version[0] == 1 and version[1] in SUPPORTED_MINORS


def normalize(version: str) -> str:
    """``1.20.2`` or ``v1.20.2`` -> ``v1.20.2``; anything else is rejected."""
    parsed = parse_version(version)
    if parsed is None or version.lstrip("v") != "{}.{}.{}".format(*parsed):
        raise ValueError(f"not a Kubernetes version: {version!r} (expected e.g. v1.20.2)")
    return "v{}.{}.{}".format(*parsed)


def debian_upstream_version(debian_version: str) -> str:
    """``1.20.5+really1.20.2-1.1+deb12u1`` -> ``1.20.2`` (epoch, revision, +really handled)."""
    upstream = debian_version.split(":", 1)[-1].rsplit("-", 1)[0]
    upstream = upstream.rsplit("really", 1)[-1]
    match = re.match(r"\d+(?:\.\d+)*", upstream)
    return match[0] if match else upstream


def ldflags(version: str, build_date: str) -> str:
    """The linker flags that stamp ``version`` into every binary, as upstream's build does."""
    major, minor, _ = parse_version(version) or (0, 0, 0)
    values = {
        "gitVersion": normalize(version),
        "gitMajor": str(major),
        "gitMinor": str(minor),
        "gitTreeState": "clean",
        "buildDate": build_date,
    }
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.{key}={value}" for key, value in values.items()]
    return " ".join(flags)
