"""Binaries the caller already has: a given folder, or PATH."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from stackcheck_builders.kubernetes.errors import K8sBuildError
from stackcheck_builders.kubernetes.versions import KUBE_BINARIES, is_supported, parse_version


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def in_folder(folder: Path) -> dict[str, Path]:
    """Which of the binaries (pause included) ``folder`` holds."""
    names = (*KUBE_BINARIES, "pause")
    return {name: folder / name for name in names if _executable(folder / name)}


def on_path() -> dict[str, Path]:
    """Which of the binaries (pause included) are on PATH."""
    found = {name: shutil.which(name) for name in (*KUBE_BINARIES, "pause")}
    return {name: Path(path) for name, path in found.items() if path}


def server_version(apiserver: Path) -> str | None:
    """``v1.20.2`` from ``kube-apiserver --version``, or None if it does not answer."""
    try:
        result = subprocess.run([str(apiserver), "--version"], capture_output=True, text=True,
                                timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    parsed = parse_version(result.stdout + result.stderr) if result.returncode == 0 else None
    return "v{}.{}.{}".format(*parsed) if parsed else None


def usable(found: dict[str, Path]) -> str | None:
    """Why ``found`` cannot serve as the lab's binaries, or None if it can (pause aside)."""
    absent = [name for name in KUBE_BINARIES if name not in found]
    if absent:
        return f"missing {', '.join(absent)}"
    version = server_version(found["kube-apiserver"])
    if not is_supported(parse_version(version or "")):
        return f"kube-apiserver --version gives {version or 'nothing'}; supported: v1.20-v1.29"
    return None


def check_folder(folder: Path) -> dict[str, Path]:
    """The binaries in a folder the caller named; raise if it lacks any or is unsupported."""
    found = in_folder(folder)
    problem = usable(found)
    if problem:
        raise K8sBuildError(f"Kubernetes binaries in {folder}: {problem}")
    return found


def linked_folder(binaries: dict[str, Path], base: Path) -> Path:
    """A folder of symlinks to ``binaries`` (which live in several places), under ``base``."""
    resolved = {name: path.resolve() for name, path in sorted(binaries.items())}
    key = hashlib.sha256(repr(sorted(resolved.items())).encode()).hexdigest()[:12]
    folder = base / "linked" / key / "bin"
    if all((folder / n).is_symlink() and (folder / n).resolve() == p for n, p in resolved.items()):
        return folder
    tmp = folder.with_name(f"bin.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, path in resolved.items():
        (tmp / name).symlink_to(path)
    shutil.rmtree(folder, ignore_errors=True)
    try:
        tmp.rename(folder)
    except OSError:  # another process made the same folder meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
