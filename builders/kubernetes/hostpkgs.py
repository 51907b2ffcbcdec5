"""Debian packages the build runs (not the Go toolchain, which stays in the cache)."""

from __future__ import annotations

import os
import subprocess

from stackcheck_builders.kubernetes.errors import K8sBuildError

#: package -> why the build needs it
BUILD_PACKAGES: dict[str, str] = {
    "dpkg-dev": "dpkg-source unpacks Debian's source package",
    "make": "make generated_files",
    "rsync": "make generated_files",
    "gcc": "compiles the pause binary",
    "libc6-dev": "static libc for the pause binary",
}


def installed(package: str) -> bool:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                            capture_output=True, text=True)
    return result.returncode == 0 and result.stdout.endswith(" installed")


def missing(packages: dict[str, str] = BUILD_PACKAGES) -> list[str]:
    return [pkg for pkg in packages if not installed(pkg)]


def ensure(packages: dict[str, str] = BUILD_PACKAGES) -> list[str]:
    """Install what is missing (as root) and return it; otherwise raise with the exact command."""
    absent = missing(packages)
    if not absent:
        return []
    command = f"apt-get install -y --no-install-recommends {' '.join(absent)}"
    if os.geteuid() != 0:
        why = "; ".join(f"{pkg}: {packages[pkg]}" for pkg in absent)
        raise K8sBuildError(f"missing Debian packages ({why}); run as root: {command}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    argv = command.split()
    if subprocess.run(argv, capture_output=True, env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)
        result = subprocess.run(argv, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["?"])[-1]
            raise K8sBuildError(f"could not install {' '.join(absent)}: {last}")
    return absent
