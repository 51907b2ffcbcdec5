"""``ensure_binaries``: the lab's Kubernetes binaries, found, or built once and cached."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from stackcheck_builders.kubernetes import external
from stackcheck_builders.kubernetes.cache import Layout, cache_base, stale
from stackcheck_builders.kubernetes.errors import K8sBuildError
from stackcheck_builders.kubernetes.progress import Progress
from stackcheck_builders.kubernetes.steps import Builder
from stackcheck_builders.kubernetes.versions import RECIPES, Recipe, normalize

DEFAULT_VERSION = "v1.20.2"


def ensure_binaries(
    version: str = DEFAULT_VERSION,
    bin_dir: Path | None = None,
    progress: Progress | None = None,
    *,
    use_path: bool = True,
) -> Path:
    """A folder holding the six Kubernetes binaries and ``pause``.

    ``bin_dir`` if given (it must hold a supported version), else all of them on PATH
    (if ``use_path`` and their kube-apiserver is v1.20-v1.29), else the user cache,
    built from Debian's source package on first use (10-15 minutes on 2 cores).
    """
    progress = progress or Progress()
    version = build_version(version)
    if bin_dir is not None:
        found = external.check_folder(Path(bin_dir))
        progress.note(f"Kubernetes binaries from {bin_dir}")
        return _with_pause(found, version, progress)
    if use_path and (found := external.on_path()):
        problem = external.usable(found)
        if problem is None:
            progress.note(f"Kubernetes binaries from PATH ({found['kube-apiserver'].parent})")
            return _with_pause(found, version, progress)
        progress.note(f"Kubernetes binaries on PATH not used: {problem}")
    return _cached(version, progress)


def _recipe(version: str) -> Recipe:
    recipe = RECIPES.get(version)
    if recipe is None:
        raise K8sBuildError(
            f"Kubernetes {version} is not on PATH and cannot be built offline (buildable: "
            f"{', '.join(RECIPES)}); pass a folder of its binaries (--k8s-bin-dir)"
        )
    return recipe


def _cached(version: str, progress: Progress) -> Path:
    layout = Layout.for_version(version)
    if not stale(layout.bin, version):
        progress.note(f"Kubernetes {version} binaries from the cache ({layout.bin})")
        return layout.bin
    recipe = _recipe(version)
    with _locked(layout, progress):
        todo = stale(layout.bin, version)  # another process may have built it meanwhile
        if todo:
            Builder(layout, recipe, progress).build(todo)
    return layout.bin


def _with_pause(found: dict[str, Path], version: str, progress: Progress) -> Path:
    """The folder of ``found`` if it has pause too, else a folder linking them and a built pause."""
    folders = {path.parent for path in found.values()}
    if "pause" in found and len(folders) == 1:
        return folders.pop()
    if "pause" not in found:
        found = {**found, "pause": _pause_only(version, progress)}
    return external.linked_folder(found, cache_base())


def _pause_only(version: str, progress: Progress) -> Path:
    """A static pause from the cache, building only it (from the source tree) if needed."""
    recipe = RECIPES.get(version) or RECIPES[DEFAULT_VERSION]
    layout = Layout.for_version(recipe.version)
    if "pause" not in stale(layout.bin, recipe.version):
        return layout.bin / "pause"
    target = layout.root / "pause" / "pause"
    if not target.exists():
        with _locked(layout, progress):
            if not target.exists():
                Builder(layout, recipe, progress).pause_only(target)
    return target


@contextmanager
def _locked(layout: Layout, progress: Progress) -> Iterator[None]:
    """One build per version at a time, across processes."""
    layout.root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(layout.lock))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        progress.note(f"another process is building into {layout.root}; waiting for it")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def build_version(version: str) -> str:
    """``version`` as the builds name it (``v1.20.2``), or a build error saying why not."""
    try:
        return normalize(version)
    except ValueError as exc:
        raise K8sBuildError(str(exc)) from None
