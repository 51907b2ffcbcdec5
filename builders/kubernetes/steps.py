"""``Builder``: the build, step by step; a step whose result is in the cache is skipped."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from stackcheck_builders.kubernetes import compile as kc
from stackcheck_builders.kubernetes import external, fetch, hostpkgs
from stackcheck_builders.kubernetes.aptconf import PrivateApt
from stackcheck_builders.kubernetes.cache import (
    Layout,
    read_manifest,
    replace_dir,
    temp_sibling,
    write_manifest,
)
from stackcheck_builders.kubernetes.errors import K8sBuildError
from stackcheck_builders.kubernetes.progress import Progress, duration, size
from stackcheck_builders.kubernetes.runner import RunStats
from stackcheck_builders.kubernetes.versions import KUBE_BINARIES, Recipe, ldflags

#: Free disk the build needs: source tree ~0.3 GB, Go build cache ~2 GB, binaries ~0.5 GB.
DISK_FIRST_BUILD = 4 << 30
DISK_REBUILD = 1 << 30
#: Build order: pause (seconds) first, then the big ones, which warm the Go cache for the rest.
ORDER = ("pause", *KUBE_BINARIES)


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Builder:
    """Builds one version's binaries into ``layout.bin``, or just pause, reporting progress."""

    def __init__(self, layout: Layout, recipe: Recipe, progress: Progress) -> None:
        self.layout, self.recipe, self.progress = layout, recipe, progress
        self._apt: PrivateApt | None = None

    def apt(self) -> PrivateApt:
        """The private apt configuration, with fresh lists (made on first use)."""
        if self._apt is None:
            r = self.recipe
            with self.progress.step(f"private apt lists ({r.source_suite} deb-src, "
                                    f"{r.go_suite} deb, from the machine's own mirror)"):
                self._apt = fetch.private_apt(self.layout, r)
                self._apt.run("apt-get", "update")
        return self._apt

    def source(self) -> str:
        """The unpacked source tree's Debian version, fetching it if needed."""
        debver = fetch.source_ready(self.layout)
        if debver is None:
            apt = self.apt()
            with self.progress.step(f"apt-get source {self.recipe.source_package}") as step:
                debver = step.detail = fetch.fetch_source(apt, self.recipe, self.layout)
        return debver

    def toolchain(self) -> str:
        """The cached Go toolchain's version, fetching it if needed."""
        gover = fetch.go_version(self.layout.goroot(self.recipe.go_series))
        if gover is None:
            apt, packages = self.apt(), " ".join(self.recipe.go_packages)
            with self.progress.step(f"Go toolchain from {self.recipe.go_suite} ({packages})") as st:
                gover = st.detail = fetch.fetch_toolchain(apt, self.recipe, self.layout)
        return gover

    def pause_only(self, target: Path) -> None:
        """Only pause, at ``target`` (the Kubernetes binaries come from elsewhere)."""
        hostpkgs.ensure({k: hostpkgs.BUILD_PACKAGES[k] for k in ("dpkg-dev", "gcc", "libc6-dev")})
        self.source()
        tmp = temp_sibling(target.parent)
        tmp.mkdir(parents=True)
        with self.progress.step("gcc pause"):
            kc.build_pause(tmp, self.layout, self.recipe, self.progress)
        replace_dir(tmp, target.parent)

    def build(self, todo: dict[str, str]) -> None:
        """Build the binaries in ``todo`` (name -> reason), keep the others, install atomically."""
        layout = self.layout
        self.progress.note(f"building Kubernetes {self.recipe.version} into {layout.bin}: "
                           f"{', '.join(todo)} ({'; '.join(sorted(set(todo.values())))})")
        self._check_disk()
        with self.progress.step("Debian build tools (dpkg-dev make rsync gcc libc6-dev)") as step:
            added = hostpkgs.ensure()
            step.detail = f"installed {' '.join(added)}" if added else "present"
        previous = read_manifest(layout.bin) or {}
        fields: dict[str, Any] = {
            "version": self.recipe.version,
            "source": f"{self.recipe.source_package} {self.source()}",
            "go_version": previous.get("go_version", "-"),
            "steps_seconds": previous.get("steps_seconds", {}),
        }
        if any(name in todo for name in KUBE_BINARIES):
            fields["go_version"] = self.toolchain()
            if not (layout.src / kc.GENERATED_MARK).exists():
                with self.progress.step("make generated_files"):
                    stats = kc.generate(layout, self.recipe, self.progress)
                if stats:
                    fields["steps_seconds"]["make generated_files"] = round(stats.seconds, 1)
        staging = temp_sibling(layout.bin)
        staging.mkdir(parents=True)
        try:
            facts = self._compile(staging, todo, previous.get("binaries") or {})
            self._verify(staging)
            write_manifest(staging, {**fields, "built_at": _utc_now()}, facts)
            replace_dir(staging, layout.bin)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        spent = sum(facts[name].get("build_seconds", 0) for name in todo)
        self.progress.note(f"Kubernetes {self.recipe.version} binaries ready in {layout.bin} "
                           f"(compiling took {duration(spent)})")

    def _compile(self, staging: Path, todo: dict[str, str],
                 previous: dict[str, dict]) -> dict[str, dict]:
        """Compile ``todo`` into ``staging``, copy the rest from the cache; return build facts."""
        flags = ldflags(self.recipe.version, _utc_now())
        facts: dict[str, dict] = {}
        for name in ORDER:
            if name not in todo:
                shutil.copy2(self.layout.bin / name, staging / name)
                facts[name] = {k: v for k, v in previous[name].items()
                               if k not in ("sha256", "size")}
                continue
            with self.progress.step("gcc pause" if name == "pause" else f"go build {name}") as st:
                stats = self._compile_one(name, staging, flags)
                st.detail = f"peak {size(stats.peak_rss)}" if stats.peak_rss else ""
            facts[name] = {
                "build_seconds": round(stats.seconds, 1),
                "peak_rss_mb": stats.peak_rss >> 20,
                "peak_tree_rss_mb": stats.peak_tree_rss >> 20,
            }
        return facts

    def _compile_one(self, name: str, staging: Path, flags: str) -> RunStats:
        if name == "pause":
            return kc.build_pause(staging, self.layout, self.recipe, self.progress)
        return kc.go_build(name, staging, flags, self.layout, self.recipe, self.progress)

    def _check_disk(self) -> None:
        need = DISK_REBUILD if self.layout.gocache.exists() else DISK_FIRST_BUILD
        free = shutil.disk_usage(self.layout.root).free
        if free < need:
            raise K8sBuildError(f"only {size(free)} free in {self.layout.root}; "
                                f"the Kubernetes build needs about {size(need)}")

    def _verify(self, staging: Path) -> None:
        got = external.server_version(staging / "kube-apiserver")
        if got != self.recipe.version:
            raise K8sBuildError(f"the built kube-apiserver reports {got}, "
                                f"not {self.recipe.version}")
