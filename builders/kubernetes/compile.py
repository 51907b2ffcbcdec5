"""Compile steps inside the unpacked source tree: generated files, one Go binary, pause."""

from __future__ import annotations

import os
import re
from pathlib import Path

from stackcheck_builders.kubernetes.cache import Layout
from stackcheck_builders.kubernetes.progress import Progress
from stackcheck_builders.kubernetes.runner import RunStats, run_logged
from stackcheck_builders.kubernetes.versions import Recipe

#: One package at a time per binary and `-p 2`: each link takes 1.3-1.5 GB.
GO_PARALLELISM = 2
GENERATED_MARK = ".stackcheck-generated"


def go_env(layout: Layout, recipe: Recipe) -> dict[str, str]:
    """An offline, vendored, static Go environment with its caches in ``layout``."""
    goroot = layout.goroot(recipe.go_series)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO") and k != "CGO_ENABLED"}
    env.update(
        PATH=f"{goroot / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
        GOROOT=str(goroot),
        GOPATH=str(layout.gopath),
        GOCACHE=str(layout.gocache),
        GOFLAGS="-mod=vendor",
        GO111MODULE="on",
        GOPROXY="off",
        GOSUMDB="off",
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
        LC_ALL="C",
    )
    return env


def generate(layout: Layout, recipe: Recipe, progress: Progress) -> RunStats | None:
    """``make generated_files`` once per source tree (its scripts use GOPATH mode)."""
    mark = layout.src / GENERATED_MARK
    if mark.exists():
        return None
    env = go_env(layout, recipe)
    for key in ("GOFLAGS", "GO111MODULE"):
        env.pop(key)
    stats = run_logged(["make", "generated_files"], title="make generated_files",
                       log=layout.logs / "generated_files.log", progress=progress, env=env,
                       cwd=layout.src)
    mark.write_text("ok\n")
    return stats


def go_build(name: str, out: Path, ldflags: str, layout: Layout, recipe: Recipe,
             progress: Progress) -> RunStats:
    """``go build`` of ``./cmd/NAME`` into ``out/NAME``."""
    argv = [str(layout.goroot(recipe.go_series) / "bin" / "go"), "build",
            "-p", str(GO_PARALLELISM), "-ldflags", ldflags, "-o", str(out / name),
            f"./cmd/{name}"]
    return run_logged(argv, title=f"go build {name}", log=layout.logs / f"{name}.log",
                      progress=progress, env=go_env(layout, recipe), cwd=layout.src)


def pause_version(src: Path, default: str) -> str:
    """``v3.4`` from build/pause/Makefile's ``TAG =`` line, else ``default``."""
    try:
        match = re.search(r"^TAG\s*\??=\s*(\S+)", (src / "build/pause/Makefile").read_text(), re.M)
    except OSError:
        match = None
    return f"v{match[1].lstrip('v')}" if match else default


def build_pause(out: Path, layout: Layout, recipe: Recipe, progress: Progress) -> RunStats:
    """The static pause binary from ``build/pause/linux/pause.c``."""
    version = pause_version(layout.src, recipe.pause_version)
    argv = ["gcc", "-Os", "-static", f"-DVERSION={version}", "build/pause/linux/pause.c",
            "-o", str(out / "pause")]
    return run_logged(argv, title="gcc pause", log=layout.logs / "pause.log", progress=progress,
                      env={**os.environ, "LC_ALL": "C"}, cwd=layout.src)
