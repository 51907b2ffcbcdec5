"""Each machine's ostree sysroot: deployments of the cached tree, and which one boots.

``<hostdir>/sysroot`` is a real ostree sysroot (``ostree admin init-fs``/``os-init``); its
repository pulls the cached commits locally (hard links, fast), deploys version 1 then
version 2 (origin ``lab:<branch>``), so 2 is the default and 1 the rollback. The remote
``lab`` points at ``file:///run/ostree-upstream``, the cached repository bound read-only into
every machine: ``ostree admin upgrade`` inside a machine pulls version 3 from there.

What boots: :func:`default_deployment` reads ``/boot/loader/entries`` like a boot loader
(the entry with the highest ``version``, its ``ostree=`` path resolved in the sysroot), as
an initramfs would with ``ostree-prepare-root``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from stackcheck_provisioners.base import ProvisionerError
from stackcheck_provisioners.hostlab.layout import HostPlan
from stackcheck_provisioners.hostlab.ostree import init_sysroot, sysroot
from stackcheck_provisioners.hostlab.proc import run
from stackcheck_provisioners.machines.tree import OS_NAME, Tree

REMOTE = "lab"
#: where a machine sees the lab's update repository (bound read-only by nspawn)
UPSTREAM_MOUNT = "/run/ostree-upstream"
DEPLOYED = 2


def stateroot_var(host: HostPlan) -> Path:
    return sysroot(host) / "ostree/deploy" / OS_NAME / "var"


def refspec(tree: Tree) -> str:
    return f"{REMOTE}:{tree.branch}"


def deploy(host: HostPlan, tree: Tree) -> list[Path]:
    """Make the host's sysroot with versions 1 and 2 deployed; return their dirs, default
    first."""
    sr = init_sysroot(host, OS_NAME, REMOTE, f"file://{UPSTREAM_MOUNT}")
    repo = f"--repo={sr / 'ostree/repo'}"
    origin = host.dir / "ostree-origin"
    origin.write_text(f"[origin]\nrefspec={refspec(tree)}\n")
    for checksum in tree.commits[:DEPLOYED]:
        run(["ostree", repo, "pull-local", str(tree.repo), checksum], timeout=300)
        run(["ostree", "admin", "deploy", f"--sysroot={sr}", f"--os={OS_NAME}",
             f"--origin-file={origin}", checksum], timeout=300)
    origin.unlink()
    deps = deployments(host)
    _populate_var(host, deps[0])
    return deps


def _populate_var(host: HostPlan, deployment: Path) -> None:
    """A new stateroot's /var gets what the tree has there (dpkg state, etcd's data dir…)."""
    run(["cp", "-a", "--no-clobber", "--", f"{deployment / 'var'}/.", str(stateroot_var(host))],
        timeout=120)


def deployments(host: HostPlan) -> list[Path]:
    """Deployment dirs, default first (``ostree admin status`` order)."""
    out = run(["ostree", "admin", "status", f"--sysroot={sysroot(host)}"]).stdout
    base = sysroot(host) / "ostree/deploy"
    return [base / m[1] / "deploy" / f"{m[2]}.{m[3]}"
            for m in re.finditer(r"^[* ] (\S+) ([0-9a-f]{64})\.(\d+)", out, re.M)]


def default_deployment(sr: Path) -> Path:
    """The deployment a boot loader would boot: first BLS entry's ``ostree=`` path."""
    entries = []
    for conf in (sr / "boot/loader/entries").glob("*.conf"):
        fields = dict(
            line.split(None, 1) for line in conf.read_text().splitlines()
            if line.strip() and not line.startswith("#") and len(line.split(None, 1)) == 2
        )
        m = re.search(r"(?:^|\s)ostree=(\S+)", fields.get("options", ""))
        if m:
            entries.append((_version(fields.get("version", "0")), m[1]))
    if not entries:
        raise ProvisionerError(f"no boot loader entry with ostree= in {sr}/boot/loader/entries")
    entries.sort(reverse=True)
    path = Path(os.path.realpath(sr / entries[0][1].lstrip("/")))
    if not (path / "usr").is_dir() or not path.is_relative_to(sr):
        raise ProvisionerError(f"the default boot entry points at {entries[0][1]}, which is no "
                               f"deployment in {sr}")
    return path


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)) or (0,)


def passwd_ids(deployment: Path, user: str) -> tuple[int, int]:
    """uid and gid of ``user`` in a deployment's /etc/passwd."""
    for line in (deployment / "etc/passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == user:
            return int(parts[2]), int(parts[3])
    raise ProvisionerError(f"no user {user!r} in {deployment}/etc/passwd")
