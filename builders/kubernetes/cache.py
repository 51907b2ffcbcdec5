"""The per-version cache folder and its manifest (sha256 of every binary)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackcheck_builders.kubernetes.versions import ALL_BINARIES

MANIFEST = "manifest.json"


def cache_base() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/stackcheck/kubernetes``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "stackcheck" / "kubernetes"


@dataclass(frozen=True)
class Layout:
    """Where one version's binaries, sources, toolchain and build caches live."""

    root: Path

    @classmethod
    def for_version(cls, version: str, base: Path | None = None) -> Layout:
        return cls((base or cache_base()) / version)

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def toolchain(self) -> Path:
        return self.root / "toolchain"

    @property
    def gocache(self) -> Path:
        return self.root / "gocache"

    @property
    def gopath(self) -> Path:
        return self.root / "gopath"

    @property
    def apt(self) -> Path:
        return self.root / "apt"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def lock(self) -> Path:
        return self.root / ".build.lock"

    def goroot(self, series: str) -> Path:
        return self.toolchain / "usr" / "lib" / f"go-{series}"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(bin_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((bin_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def stale(bin_dir: Path, version: str,
          names: tuple[str, ...] = ALL_BINARIES) -> dict[str, str]:
    """Binaries to (re)build, each with the reason; empty means a complete, verified cache."""
    manifest = read_manifest(bin_dir)
    if manifest is None:
        return dict.fromkeys(names, "no manifest")
    if manifest.get("version") != version:
        return dict.fromkeys(names, f"manifest is for {manifest.get('version')}")
    recorded = manifest.get("binaries") or {}
    reasons = {}
    for name in names:
        path = bin_dir / name
        expected = (recorded.get(name) or {}).get("sha256")
        if not expected:
            reasons[name] = "not in manifest"
        elif not path.is_file() or not os.access(path, os.X_OK):
            reasons[name] = "missing or not executable"
        elif sha256(path) != expected:
            reasons[name] = "checksum mismatch"
    return reasons


def write_manifest(bin_dir: Path, fields: dict[str, Any], binaries: dict[str, dict]) -> None:
    """Record ``fields`` plus, per binary, its sha256 and size and the given build facts."""
    entries = {}
    for name, facts in binaries.items():
        path = bin_dir / name
        entries[name] = {**facts, "sha256": sha256(path), "size": path.stat().st_size}
    data = {**fields, "binaries": entries}
    (bin_dir / MANIFEST).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def temp_sibling(path: Path) -> Path:
    """``NAME.tmp-PID`` beside ``path``, with any leftover of it removed."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    return tmp


def replace_dir(tmp: Path, final: Path) -> None:
    """Put the complete tree ``tmp`` at ``final`` by rename (the old one is removed)."""
    if final.exists():
        old = final.with_name(f"{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        shutil.rmtree(old, ignore_errors=True)
    tmp.rename(final)
