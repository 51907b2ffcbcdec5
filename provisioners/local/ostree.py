"""An ostree ("Atomic") sysroot per host: two commits of a minimal OS, the first deployed.

The first commit of ``stackcheck/stable`` is deployed and recorded as booted in
``<hostdir>/booted-deployment`` (its checksum); a second commit exists on the branch to
upgrade to. ostree cannot mark a deployment booted without a real boot, so the lab keeps
that file and :func:`make_default_booted` (a "reboot") updates it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from provisioners.base import ProvisionerError
from provisioners.local.layout import OS_NAME, HostPlan, Layout
from provisioners.local.proc import run

KVER = "6.1.0-stackcheck"
BRANCH = f"{OS_NAME}/stable"
_STATUS_RE = re.compile(r"^[* ] (\S+) ([0-9a-f]{64})\.(\d+)", re.M)


def sysroot(host: HostPlan) -> Path:
    return host.dir / "sysroot"


def booted_file(host: HostPlan) -> Path:
    return host.dir / "booted-deployment"


def _tree(base: Path, version: int) -> Path:
    tree = base / f"tree-v{version}"
    (tree / "usr/lib/modules" / KVER).mkdir(parents=True, exist_ok=True)
    (tree / "usr/lib/modules" / KVER / "vmlinuz").write_bytes(b"stackcheck fake kernel\n")
    (tree / "usr/etc").mkdir(parents=True, exist_ok=True)
    (tree / "usr/etc/os-release").write_text(
        f'ID={OS_NAME}\nNAME="Stackcheck OS"\nVERSION="{version}"\nVERSION_ID={version}\n'
        f'PRETTY_NAME="Stackcheck OS {version}"\n'
    )
    (tree / "usr/bin").mkdir(exist_ok=True)
    return tree


def _commit(sr: Path, tree: Path, version: int) -> str:
    out = run([
        "ostree", f"--repo={sr / 'ostree/repo'}", "commit", f"--branch={BRANCH}",
        f"--tree=dir={tree}", f"--subject=Stackcheck OS {version}",
        f"--add-metadata-string=version={version}",
    ]).stdout
    return out.strip().splitlines()[-1]


def create(layout: Layout, host: HostPlan) -> dict[str, str]:
    """Build the sysroot; return {'sysroot', 'deployed', 'upgrade'} (checksums)."""
    sr = sysroot(host)
    sr.mkdir(parents=True, exist_ok=True)
    run(["ostree", "admin", "init-fs", str(sr)])
    run(["ostree", "admin", "os-init", f"--sysroot={sr}", OS_NAME])
    work = host.dir / "ostree-trees"
    first = _commit(sr, _tree(work, 1), 1)
    run(["ostree", "admin", "deploy", f"--sysroot={sr}", f"--os={OS_NAME}", BRANCH])
    second = _commit(sr, _tree(work, 2), 2)
    booted_file(host).write_text(first + "\n")
    return {"sysroot": str(sr), "deployed": first, "upgrade": second}


def deployments(host: HostPlan) -> list[tuple[str, str, int]]:
    """(osname, checksum, serial) of every deployment, default first."""
    out = run(["ostree", "admin", "status", f"--sysroot={sysroot(host)}"]).stdout
    return [(m[1], m[2], int(m[3])) for m in _STATUS_RE.finditer(out)]


def make_default_booted(host: HostPlan) -> str:
    """Record the default deployment as booted (what a reboot does); return its checksum."""
    deps = deployments(host)
    if not deps:
        raise ProvisionerError(f"{host.name}: no ostree deployment in {sysroot(host)}")
    checksum = deps[0][1]
    booted_file(host).write_text(checksum + "\n")
    return checksum


def unlock(sr: Path) -> None:
    """Clear the immutable flag ostree sets on deployment dirs, so they can be removed."""
    for dep in sr.glob("ostree/deploy/*/deploy/*"):
        if dep.is_dir() and not dep.is_symlink():
            subprocess.run(["chattr", "-i", str(dep)], capture_output=True)


def version() -> str:
    out = run(["ostree", "--version"], check=False).stdout
    m = re.search(r"Version: '?([^'\n]+)", out)
    return m.group(1) if m else "unknown"
