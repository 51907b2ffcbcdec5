"""The machines' OS: a Debian 12 tree from Debian's packages, committed into a cached ostree repo.

Built once with ``mmdebstrap`` and made an ostree tree (``/etc`` moved to ``/usr/etc``, an empty
``/boot``, a placeholder kernel file under ``usr/lib/modules/<kver>/`` as ostree requires one —
no kernel is ever booted, systemd-nspawn runs the tree's systemd — nothing under
``/dev``/``/proc``/``/sys``/``/run``, ``/root``, ``/home``, ``/srv``… under ``/var`` as on
Atomic hosts, no SSH host keys). Three commits on :data:`BRANCH`, one month apart, differing
only in ``IMAGE_VERSION`` of ``/usr/lib/os-release``: a host deploys 1 and 2 (2 booted, 1 the
rollback), 3 is the upgrade.

Cache: ``~/.cache/stackcheck/machines/<key>/`` (``repo/`` a bare ostree repo, ``manifest.json``
written last); ``key`` hashes the suite, packages and recipe, so a changed recipe builds anew.
A lock file makes concurrent builders wait for one build.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from stackcheck_provisioners.base import ProvisionerError
from stackcheck_provisioners.hostlab.proc import run
from stackcheck_provisioners.hostlab.progress import Progress

SUITE = "bookworm"
OS_NAME = "debian"
BRANCH = "debian/12/x86_64/stable"
KVER = "6.1.0-nspawn"
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "iproute2", "iptables", "procps",
    "iputils-ping", "etcd-server", "etcd-client", "docker.io", "ostree", "ca-certificates",
    # Kubernetes on containerd: the CRI runtime, Debian's CNI plugins, kube-proxy's conntrack
    "containerd", "runc", "containernetworking-plugins", "conntrack",
)
#: (version, commit timestamp), oldest first
COMMITS = ((1, "2024-01-01 00:00:00 +0000"), (2, "2024-02-01 00:00:00 +0000"),
           (3, "2024-03-01 00:00:00 +0000"))
RECIPE = 3  # bump when the tree's post-processing changes
BUILD_TIMEOUT = 1800.0
#: top-level dirs that live in /var on an ostree host (symlink -> target)
VAR_LINKS = {"root": "var/roothome", "home": "var/home", "srv": "var/srv", "mnt": "var/mnt",
             "opt": "var/opt", "media": "run/media", "tmp": "sysroot/tmp"}
TMPFILES = """\
# ostree layout: these top-level dirs are symlinks into /var
d /var/roothome 0700 root root -
d /var/home 0755 root root -
d /var/srv 0755 root root -
d /var/mnt 0755 root root -
d /var/opt 0755 root root -
d /var/usrlocal 0755 root root -
d /run/media 0755 root root -
"""


def cache_base() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/stackcheck/machines``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "stackcheck" / "machines"


def cache_key() -> str:
    text = json.dumps({"suite": SUITE, "packages": PACKAGES, "recipe": RECIPE, "kver": KVER,
                       "commits": COMMITS, "branch": BRANCH})
    return f"{SUITE}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class Tree:
    """A built, cached tree: its repo and commits (oldest first)."""

    repo: Path
    commits: list[str]
    branch: str = BRANCH


def cached(base: Path | None = None) -> Tree | None:
    """The cached tree if complete, else None."""
    root = (base or cache_base()) / cache_key()
    try:
        data = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    repo = root / "repo"
    commits = data.get("commits") or []
    if len(commits) != len(COMMITS) or not (repo / "config").is_file():
        return None
    return Tree(repo, commits)


def ensure(progress: Progress, base: Path | None = None) -> Tree:
    """The cached tree, building it first if needed (one builder at a time)."""
    tree = cached(base)
    if tree is not None:
        return tree
    root = (base or cache_base()) / cache_key()
    root.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root.parent / f".{root.name}.lock"))
    try:
        lock.acquire(timeout=1)
    except Timeout:
        progress.note(f"another process builds the machine tree {root.name}: waiting "
                      f"(up to {BUILD_TIMEOUT:g}s)")
        try:
            lock.acquire(timeout=BUILD_TIMEOUT)
        except Timeout:
            raise ProvisionerError(f"the machine tree {root} is still locked after "
                                   f"{BUILD_TIMEOUT:g}s by another build") from None
    try:
        tree = cached(base)
        if tree is None:
            tree = _build(root, progress)
        return tree
    finally:
        lock.release()


def _build(root: Path, progress: Progress) -> Tree:
    if shutil.which("mmdebstrap") is None:
        raise ProvisionerError("mmdebstrap is not installed (apt-get install mmdebstrap): "
                               "it builds the machines' Debian tree")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rootfs = root / "rootfs"
    started = time.monotonic()
    with progress.step(f"machine tree: mmdebstrap Debian {SUITE} ({len(PACKAGES)} packages, "
                       "once; cached)"):
        run(["mmdebstrap", "--variant=apt", "--quiet", f"--include={','.join(PACKAGES)}",
             SUITE, str(rootfs)], timeout=BUILD_TIMEOUT)
    with progress.step("machine tree: make it an ostree tree"):
        make_ostree_tree(rootfs)
    repo = root / "repo"
    commits: list[str] = []
    with progress.step(f"machine tree: commit {len(COMMITS)} versions on {BRANCH}"):
        run(["ostree", f"--repo={repo}", "init", "--mode=bare"])
        overlays = root / "overlays"
        for version, timestamp in COMMITS:
            if not commits:
                trees = [f"--tree=dir={rootfs}"]
            else:
                overlay = overlays / f"v{version}"
                release = overlay / "usr/lib/os-release"
                release.parent.mkdir(parents=True)
                release.write_text(_os_release(rootfs, version))
                trees = [f"--tree=ref={commits[-1]}", f"--tree=dir={overlay}"]
            out = run(["ostree", f"--repo={repo}", "commit", f"--branch={BRANCH}", *trees,
                       f"--subject=Debian 12 machine tree {version}",
                       f"--add-metadata-string=version={version}",
                       f"--timestamp={timestamp}"], timeout=600).stdout
            commits.append(out.strip().splitlines()[-1])
        # version 1's os-release carries IMAGE_VERSION=1 already (see make_ostree_tree)
        shutil.rmtree(overlays, ignore_errors=True)
    _rmtree(rootfs)
    manifest = {"key": root.name, "suite": SUITE, "packages": list(PACKAGES), "branch": BRANCH,
                "commits": commits, "built_at": time.time(),
                "build_seconds": round(time.monotonic() - started, 1)}
    tmp = root / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, root / "manifest.json")
    progress.note(f"machine tree cached in {root} ({manifest['build_seconds']}s)")
    return Tree(repo, commits)


def _os_release(rootfs: Path, version: int) -> str:
    lines = [ln for ln in (rootfs / "usr/lib/os-release").read_text().splitlines()
             if not ln.startswith("IMAGE_VERSION=")]
    return "\n".join([*lines, f"IMAGE_VERSION={version}"]) + "\n"


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        run(["rm", "-rf", "--one-file-system", str(path)], check=False)


def _empty(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        for child in path.iterdir():
            if child.is_dir() and not child.is_symlink():
                _rmtree(child)
            else:
                child.unlink()
    path.mkdir(exist_ok=True)


def make_ostree_tree(t: Path) -> None:
    """Turn an mmdebstrap root into a tree ``ostree admin deploy`` accepts and nspawn boots."""
    for sub in ("dev", "proc", "sys", "run", "boot"):
        _empty(t / sub)
    for key in (t / "etc/ssh").glob("ssh_host_*"):
        key.unlink()  # per-host keys are the lab's (never one key for every machine)
    (t / "etc/machine-id").write_text("")  # systemd makes one per machine at first boot
    (t / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (t / "etc/hostname").write_text("localhost\n")
    release = t / "usr/lib/os-release"
    release.write_text(_os_release(t, 1))
    mods = t / "usr/lib/modules" / KVER
    mods.mkdir(parents=True, exist_ok=True)
    (mods / "vmlinuz").write_text("placeholder: booted with systemd-nspawn, not a kernel\n")
    (mods / "initramfs.img").write_text("placeholder\n")
    (t / "usr/lib/tmpfiles.d/ostree-layout.conf").write_text(TMPFILES)
    for name, target in VAR_LINKS.items():
        path = t / name
        if path.is_dir() and not path.is_symlink():
            _rmtree(path)
        path.symlink_to(target)
    local = t / "usr/local"
    if local.is_dir() and not local.is_symlink():
        _rmtree(local)
        local.symlink_to("../var/usrlocal")
    (t / "sysroot").mkdir(exist_ok=True)
    if not (t / "ostree").is_symlink():
        (t / "ostree").symlink_to("sysroot/ostree")
    if (t / "usr/etc").exists():
        raise ProvisionerError(f"{t}/usr/etc exists already: not an mmdebstrap tree")
    (t / "etc").rename(t / "usr/etc")
    # var: a new stateroot's /var starts empty; systemd-tmpfiles fills it at boot
