"""Fetch Debian's Kubernetes source tree and the Go toolchain into the cache (no system install)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from stackcheck_builders.kubernetes.aptconf import PrivateApt
from stackcheck_builders.kubernetes.cache import Layout, replace_dir, temp_sibling
from stackcheck_builders.kubernetes.errors import K8sBuildError
from stackcheck_builders.kubernetes.versions import Recipe, debian_upstream_version

SOURCE_MARK = ".stackcheck-source"


def private_apt(layout: Layout, recipe: Recipe) -> PrivateApt:
    """The machine's mirror with the source suite (deb-src) and the Go suite (deb)."""
    apt = PrivateApt.from_machine(
        layout.apt, [("deb-src", recipe.source_suite), ("deb", recipe.go_suite)]
    )
    apt.write()
    return apt


def _run(argv: list[str], what: str, cwd: Path | None = None) -> str:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, "LC_ALL": "C"})
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        raise K8sBuildError(f"{what} failed: {last}")
    return result.stdout


def source_ready(layout: Layout) -> str | None:
    """The Debian version of the unpacked source tree, if complete."""
    try:
        return (layout.src / SOURCE_MARK).read_text().strip() or None
    except OSError:
        return None


def source_version(apt: PrivateApt, package: str) -> str:
    """Debian version of ``package``'s source in the private lists."""
    out = apt.run("apt-cache", "showsrc", "--only-source", package).stdout
    versions = [ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Version:")]
    if not versions:
        raise K8sBuildError(f"no source package {package!r} in the private apt lists")
    return versions[0]


def fetch_source(apt: PrivateApt, recipe: Recipe, layout: Layout) -> str:
    """Download and unpack the source package into ``layout.src``; return its Debian version."""
    debver = source_version(apt, recipe.source_package)
    if debian_upstream_version(debver) != recipe.version.lstrip("v"):
        raise K8sBuildError(
            f"Debian's {recipe.source_package} source is {debver}, not {recipe.version}: "
            f"pass a folder of prebuilt binaries instead (--k8s-bin-dir)"
        )
    downloads = layout.apt / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    apt.run("apt-get", "source", "--download-only", f"{recipe.source_package}={debver}",
            cwd=downloads)
    dsc = downloads / f"{recipe.source_package}_{debver.split(':', 1)[-1]}.dsc"
    tmp = temp_sibling(layout.src)
    _run(["dpkg-source", "--no-copy", "-x", str(dsc), str(tmp)], "dpkg-source -x")
    (tmp / SOURCE_MARK).write_text(debver + "\n")
    replace_dir(tmp, layout.src)
    return debver


def go_version(goroot: Path) -> str | None:
    """``go1.15.15`` for a working toolchain at ``goroot``, else None."""
    go = goroot / "bin" / "go"
    if not go.exists():
        return None
    env = {"PATH": os.environ.get("PATH", ""), "GOROOT": str(goroot), "HOME": str(goroot),
           "GOTOOLCHAIN": "local"}
    result = subprocess.run([str(go), "version"], capture_output=True, text=True, env=env)
    words = result.stdout.split()
    return words[2] if result.returncode == 0 and len(words) > 2 else None


def fetch_toolchain(apt: PrivateApt, recipe: Recipe, layout: Layout) -> str:
    """Download the Go .debs and unpack them into ``layout.toolchain``; return the Go version."""
    downloads = layout.apt / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    for package in recipe.go_packages:
        for old in downloads.glob(f"{package}_*.deb"):
            old.unlink()
    apt.run("apt-get", "download", *recipe.go_packages, cwd=downloads)
    tmp = temp_sibling(layout.toolchain)
    tmp.mkdir(parents=True)
    for package in recipe.go_packages:
        debs = sorted(downloads.glob(f"{package}_*.deb"))
        if not debs:
            raise K8sBuildError(f"apt-get download {package} left no .deb in {downloads}")
        _run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)], f"dpkg-deb -x {debs[-1].name}")
    goroot = tmp / layout.goroot(recipe.go_series).relative_to(layout.toolchain)
    version = go_version(goroot)
    if not version or not version.startswith(f"go{recipe.go_series}"):
        shutil.rmtree(tmp, ignore_errors=True)
        raise K8sBuildError(f"unpacked Go toolchain does not run (go version: {version})")
    replace_dir(tmp, layout.toolchain)
    return version
