"""An ostree ("Atomic") sysroot per host, updated from the lab's own update repository.

The lab's update repository (``<state_dir>/ostree-upstream``, archive mode) holds three
commits of a minimal OS on ``stackcheck/stable`` (versions 1, 2, 3; timestamps one month
apart). Every host's sysroot has a remote ``stackcheck`` whose URL is
``file:///run/stackcheck/ostree-upstream`` (the host's private /run links it to the lab's
repository), and deploys versions 1 then 2 with origin ``stackcheck:stackcheck/stable``:
version 2 is booted, version 1 is the rollback, version 3 is the upgrade.

Booting. The lab records the booted deployment (``<csum>.<serial>``) in
``<hostdir>/booted-deployment``; a "reboot" (:func:`make_default_booted`) records the
default deployment. ``<hostdir>/ostree-booted-view CMD...`` runs CMD the way it would run
on a host really booted into that deployment: in private mount and PID namespaces, chrooted
into the deployment, with the sysroot on ``/sysroot``, its ``/boot`` on ``/boot``, the
stateroot's ``var`` on ``/var``, ``/run/ostree-booted`` present and the machine's ``/usr``
(read-only, for the ostree binary) on ``/usr``. ostree itself then marks the deployment
booted (``*``), pending and rollback, refuses to undeploy it, and ``ostree admin upgrade``
works. The lab's record is the only simulated part: no kernel boots.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import threading
from pathlib import Path

from stackcheck_provisioners.base import ProvisionerError
from stackcheck_provisioners.hostlab import state
from stackcheck_provisioners.hostlab.layout import OS_NAME, HostPlan, Layout
from stackcheck_provisioners.hostlab.proc import run

KVER = "6.1.0-stackcheck"
BRANCH = f"{OS_NAME}/stable"
REMOTE = OS_NAME
REFSPEC = f"{REMOTE}:{BRANCH}"
#: where a host sees the lab's update repository (its private /run)
REMOTE_PATH = "/run/stackcheck/ostree-upstream"
#: (version, commit timestamp) of the update repository's commits, oldest first
COMMITS = ((1, "2024-01-01 00:00:00 +0000"), (2, "2024-02-01 00:00:00 +0000"),
           (3, "2024-03-01 00:00:00 +0000"))
#: how many of them a host deploys at bring-up (the last one deployed is booted)
DEPLOYED = 2
_STATUS_RE = re.compile(r"^[* ] (\S+) ([0-9a-f]{64})\.(\d+)", re.M)
_UPSTREAM_LOCK = threading.Lock()
_UPSTREAM: dict[Path, list[str]] = {}


def sysroot(host: HostPlan) -> Path:
    return host.dir / "sysroot"


def booted_file(host: HostPlan) -> Path:
    return host.dir / "booted-deployment"


def view_script(host: HostPlan) -> Path:
    return host.dir / "ostree-booted-view"


def upstream(layout: Layout) -> Path:
    return layout.state_dir / "ostree-upstream"


def _tree(base: Path, version: int) -> Path:
    """A minimal OS tree with the top-level layout of an Atomic host."""
    tree = base / f"tree-v{version}"
    (tree / "usr/lib/modules" / KVER).mkdir(parents=True, exist_ok=True)
    (tree / "usr/lib/modules" / KVER / "vmlinuz").write_bytes(b"stackcheck fake kernel\n")
    (tree / "usr/etc").mkdir(parents=True, exist_ok=True)
    (tree / "usr/etc/os-release").write_text(
        f'ID={OS_NAME}\nNAME="Stackcheck OS"\nVERSION="{version}"\nVERSION_ID={version}\n'
        f'PRETTY_NAME="Stackcheck OS {version}"\n'
    )
    for sub in ("usr/bin", "usr/sbin", "usr/lib64", "sysroot", "boot", "dev", "proc", "run",
                "sys", "tmp", "var", "mnt", "root", "home"):
        (tree / sub).mkdir(parents=True, exist_ok=True)
    for link, target in (("ostree", "sysroot/ostree"), ("bin", "usr/bin"), ("sbin", "usr/sbin"),
                         ("lib", "usr/lib"), ("lib64", "usr/lib64")):
        if not (tree / link).is_symlink():
            (tree / link).symlink_to(target)
    return tree


def ensure_upstream(layout: Layout) -> list[str]:
    """Create the lab's update repository once; return its commits, oldest first."""
    repo = upstream(layout)
    with _UPSTREAM_LOCK:
        if repo in _UPSTREAM and (repo / "config").exists():
            return _UPSTREAM[repo]
        state.add_resource(layout.state_dir, "dir", str(repo))
        if repo.exists():
            shutil.rmtree(repo)
        work = layout.state_dir / "ostree-trees"
        state.add_resource(layout.state_dir, "dir", str(work))
        run(["ostree", f"--repo={repo}", "init", "--mode=archive"])
        commits = []
        for version, timestamp in COMMITS:
            out = run([
                "ostree", f"--repo={repo}", "commit", f"--branch={BRANCH}",
                f"--tree=dir={_tree(work, version)}", f"--subject=Stackcheck OS {version}",
                f"--add-metadata-string=version={version}", f"--timestamp={timestamp}",
            ]).stdout
            commits.append(out.strip().splitlines()[-1])
        shutil.rmtree(work, ignore_errors=True)
        _UPSTREAM[repo] = commits
        return commits


def _view_text(layout: Layout, host: HostPlan) -> str:
    q = shlex.quote
    inner = (
        # busybox's mount, where there is one, costs a third of util-linux's (no libmount):
        # the view runs for every ostree command of the atomic checks, 13 mounts each
        'if command -v busybox >/dev/null; then mount() { busybox mount "$@"; }; fi\n'
        'sr=$1 up=$2 dep=$3 mnt=$4; shift 4\n'
        'mount --bind "$sr" "$dep/sysroot"\n'
        'mount --bind "$sr/boot" "$dep/boot"\n'
        f'mount --bind "$sr/ostree/deploy/{OS_NAME}/var" "$dep/var"\n'
        'mount --rbind /usr "$dep/usr"\n'
        'mount -o remount,bind,ro "$dep/usr"\n'
        'mount --rbind /dev "$dep/dev"\n'
        'mount -t proc proc "$dep/proc"\n'
        'mount -t tmpfs -o mode=0755 tmpfs "$dep/run"\n'
        'mount -t tmpfs tmpfs "$dep/tmp"\n'
        ': > "$dep/run/ostree-booted"\n'
        'mkdir -p "$dep$mnt"\n'
        'mount --bind "$up" "$dep$mnt"\n'
        'mount -o remount,bind,ro "$dep$mnt"\n'
        'cd "$dep"\n'
        'exec chroot "$dep" "$@"\n'
    )
    return f"""#!/bin/sh
# stackcheck local lab {layout.name}, host {host.name}: run a command as on a host booted into
# the ostree deployment recorded in {booted_file(host).name} (see provisioners/local/ostree.py).
set -eu
sysroot={q(str(sysroot(host)))}
marker={q(str(booted_file(host)))}
upstream={q(str(upstream(layout)))}
dep="$sysroot/ostree/deploy/{OS_NAME}/deploy/$(cat "$marker")"
if [ ! -d "$dep" ]; then
    echo "ostree-booted-view: the booted deployment $dep no longer exists" >&2
    exit 125
fi
exec unshare --mount --pid --fork --propagation private -- /bin/sh -eu -c {q(inner)} \\
    view "$sysroot" "$upstream" "$dep" {q(REMOTE_PATH)} "$@"
"""


def init_sysroot(host: HostPlan, os_name: str, remote: str, url: str) -> Path:
    """The host's new sysroot with the ``os_name`` stateroot and one remote; return its path."""
    sr = sysroot(host)
    sr.mkdir(parents=True, exist_ok=True)
    run(["ostree", "admin", "init-fs", str(sr)])
    run(["ostree", "admin", "os-init", f"--sysroot={sr}", os_name])
    run(["ostree", f"--repo={sr / 'ostree/repo'}", "remote", "add", "--no-gpg-verify", remote,
         url])
    return sr


def create(layout: Layout, host: HostPlan) -> dict[str, str]:
    """Build the host's sysroot; return {'sysroot', 'view', 'deployed', 'rollback', 'upgrade'}."""
    commits = ensure_upstream(layout)
    sr = init_sysroot(host, OS_NAME, REMOTE, f"file://{REMOTE_PATH}")
    repo = f"--repo={sr / 'ostree/repo'}"
    link = host.run_dir / REMOTE_PATH.removeprefix("/run/")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(upstream(layout))
    origin = host.dir / "ostree-origin"
    origin.write_text(f"[origin]\nrefspec={REFSPEC}\n")
    for checksum in commits[:DEPLOYED]:
        run(["ostree", repo, "pull-local", str(upstream(layout)), checksum])
        run(["ostree", "admin", "deploy", f"--sysroot={sr}", f"--os={OS_NAME}",
             f"--origin-file={origin}", checksum])
    origin.unlink()
    view = view_script(host)
    view.write_text(_view_text(layout, host))
    view.chmod(0o755)
    make_default_booted(host)
    return {"sysroot": str(sr), "view": str(view), "deployed": commits[DEPLOYED - 1],
            "rollback": commits[DEPLOYED - 2], "upgrade": commits[DEPLOYED]}


def deployments(host: HostPlan) -> list[tuple[str, str, int]]:
    """(osname, checksum, serial) of every deployment, default first."""
    out = run(["ostree", "admin", "status", f"--sysroot={sysroot(host)}"]).stdout
    return [(m[1], m[2], int(m[3])) for m in _STATUS_RE.finditer(out)]


def make_default_booted(host: HostPlan) -> str:
    """Record the default deployment as booted (what a reboot does); return ``csum.serial``."""
    deps = deployments(host)
    if not deps:
        raise ProvisionerError(f"{host.name}: no ostree deployment in {sysroot(host)}")
    _, checksum, serial = deps[0]
    booted = f"{checksum}.{serial}"
    booted_file(host).write_text(booted + "\n")
    return booted


def unlock(sr: Path) -> None:
    """Clear the immutable flag ostree sets on deployment dirs, so they can be removed."""
    for dep in sr.glob("ostree/deploy/*/deploy/*"):
        if dep.is_dir() and not dep.is_symlink():
            subprocess.run(["chattr", "-i", str(dep)], capture_output=True)


def version() -> str:
    out = run(["ostree", "--version"], check=False).stdout
    m = re.search(r"Version: '?([^'\n]+)", out)
    return m.group(1) if m else "unknown"
