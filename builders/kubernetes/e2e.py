"""Kubernetes' own end-to-end tests: ``e2e.test`` and ``ginkgo``, built offline once and cached.

``ensure_e2e()`` returns :class:`E2EBinaries`: the ``e2e.test`` the caller points at
(``--e2e-bin``, which should match the cluster's version), else the user cache's
``<version>/e2e/``, built with ``go test -c ./test/e2e`` from the same Debian source tree,
Go 1.15 toolchain and Go build cache as the lab's binaries (vendored, offline, static; about
3 minutes and 1.6 GB on 2 cores). The folder holds ``e2e.test``, ``ginkgo`` and a manifest
with their sha256; it is built under the version's build lock and put in place by rename.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from stackcheck_builders.kubernetes import compile as kc
from stackcheck_builders.kubernetes import hostpkgs
from stackcheck_builders.kubernetes.binaries import (
    DEFAULT_VERSION,
    _locked,
    _recipe,
    build_version,
)
from stackcheck_builders.kubernetes.cache import (
    Layout,
    read_manifest,
    replace_dir,
    stale,
    temp_sibling,
    write_manifest,
)
from stackcheck_builders.kubernetes.errors import K8sBuildError
from stackcheck_builders.kubernetes.progress import Progress, duration, size
from stackcheck_builders.kubernetes.runner import RunStats, run_logged
from stackcheck_builders.kubernetes.steps import Builder
from stackcheck_builders.kubernetes.versions import ldflags, normalize, parse_version

E2E_BINARIES: tuple[str, ...] = ("e2e.test", "ginkgo")
#: Go packages of the two binaries (ginkgo from the vendored copy the suite was written for).
PACKAGES = {"e2e.test": "./test/e2e", "ginkgo": "github.com/onsi/ginkgo/ginkgo"}
#: Free disk a build needs: e2e.test ~150 MB, Go build cache growth ~1 GB.
DISK_NEEDED = 2 << 30


@dataclass(frozen=True)
class E2EBinaries:
    """Where ``e2e.test`` (and ``ginkgo``, if known) are, and the version e2e.test reports;
    ``kubectl``: one of the same version for the specs that run it (None: not known)."""

    e2e_test: Path
    ginkgo: Path | None
    version: str
    kubectl: Path | None = None


def e2e_folder(layout: Layout) -> Path:
    return layout.root / "e2e"


def e2e_version(binary: Path) -> str | None:
    """``v1.20.2`` from ``e2e.test --version``, or None if it does not answer."""
    try:
        result = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                                timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    parsed = parse_version(result.stdout) if result.returncode == 0 else None
    return "v{}.{}.{}".format(*parsed) if parsed else None


def ensure_e2e(
    version: str = DEFAULT_VERSION,
    e2e_bin: Path | None = None,
    progress: Progress | None = None,
) -> E2EBinaries:
    """``e2e_bin`` if given (it must answer ``--version``), else the cached build of ``version``."""
    progress = progress or Progress()
    version = build_version(version)
    if e2e_bin is not None:
        return _given(Path(e2e_bin), version, progress)
    layout = Layout.for_version(version)
    folder = e2e_folder(layout)
    if stale(folder, version, E2E_BINARIES):
        recipe = _recipe(version)
        with _locked(layout, progress):
            todo = stale(folder, version, E2E_BINARIES)  # built by another process meanwhile?
            if todo:
                E2EBuilder(layout, recipe, progress).build_e2e(todo)
    else:
        progress.note(f"e2e.test {version} from the cache ({folder})")
    return E2EBinaries(folder / "e2e.test", folder / "ginkgo", version, _kubectl(layout))


def _kubectl(layout: Layout) -> Path | None:
    """The lab build's kubectl of this version, else one on PATH."""
    cached = layout.bin / "kubectl"
    found = cached if cached.is_file() else shutil.which("kubectl")
    return Path(found) if found else None


def _given(binary: Path, wanted: str, progress: Progress) -> E2EBinaries:
    if not binary.is_file():
        raise K8sBuildError(f"--e2e-bin {binary}: no such file")
    found = e2e_version(binary)
    if found is None:
        raise K8sBuildError(f"--e2e-bin {binary}: does not answer --version like e2e.test does")
    if found != wanted:
        progress.note(f"e2e.test {binary} is {found}, not {wanted}: it should match the cluster")
    ginkgo = binary.with_name("ginkgo")
    progress.note(f"e2e.test {found} from {binary}")
    kubectl = _kubectl(Layout.for_version(found))
    return E2EBinaries(binary, ginkgo if ginkgo.is_file() else None, found, kubectl)


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class E2EBuilder(Builder):
    """Builds ``e2e.test`` and ``ginkgo`` into ``<version>/e2e`` with the lab build's tree."""

    def build_e2e(self, todo: dict[str, str]) -> None:
        folder = e2e_folder(self.layout)
        self.progress.note(f"building e2e.test {self.recipe.version} into {folder} "
                           f"({'; '.join(sorted(set(todo.values())))})")
        free = shutil.disk_usage(self.layout.root).free
        if free < DISK_NEEDED:
            raise K8sBuildError(f"only {size(free)} free in {self.layout.root}; building "
                                f"e2e.test needs about {size(DISK_NEEDED)}")
        hostpkgs.ensure({k: hostpkgs.BUILD_PACKAGES[k] for k in ("dpkg-dev", "make", "rsync")})
        fields = {"version": self.recipe.version,
                  "source": f"{self.recipe.source_package} {self.source()}",
                  "go_version": self.toolchain()}
        if not (self.layout.src / kc.GENERATED_MARK).exists():
            with self.progress.step("make generated_files"):
                kc.generate(self.layout, self.recipe, self.progress)
        staging = temp_sibling(folder)
        staging.mkdir(parents=True)
        try:
            facts = {}
            flags = ldflags(self.recipe.version, _utc_now())
            for name in E2E_BINARIES:
                with self.progress.step(f"go {'test -c' if name == 'e2e.test' else 'build'} "
                                        f"{name}") as step:
                    stats = self._go(name, staging, flags)
                    step.detail = f"peak {size(stats.peak_tree_rss)}"
                facts[name] = {"build_seconds": round(stats.seconds, 1),
                               "peak_rss_mb": stats.peak_rss >> 20,
                               "peak_tree_rss_mb": stats.peak_tree_rss >> 20}
            got = e2e_version(staging / "e2e.test")
            if got != self.recipe.version:
                raise K8sBuildError(f"the built e2e.test reports {got}, not {self.recipe.version}")
            write_manifest(staging, {**fields, "built_at": _utc_now()}, facts)
            replace_dir(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        spent = sum(f["build_seconds"] for f in facts.values())
        self.progress.note(f"e2e.test {self.recipe.version} ready in {folder} "
                           f"(compiling took {duration(spent)})")

    def _go(self, name: str, out: Path, flags: str) -> RunStats:
        go = str(self.layout.goroot(self.recipe.go_series) / "bin" / "go")
        verb = ["test", "-c"] if name == "e2e.test" else ["build"]
        argv = [go, *verb, "-p", str(kc.GO_PARALLELISM), "-ldflags", flags,
                "-o", str(out / name), PACKAGES[name]]
        return run_logged(argv, title=f"go build {name}", log=self.layout.logs / f"{name}.log",
                          progress=self.progress, env=kc.go_env(self.layout, self.recipe),
                          cwd=self.layout.src)


def manifest(version: str = DEFAULT_VERSION) -> dict | None:
    """The cached build's manifest (build seconds, peak memory, sha256), if any."""
    return read_manifest(e2e_folder(Layout.for_version(normalize(version))))
