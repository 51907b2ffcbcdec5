"""``stackcheck lab k8s-build`` / ``e2e-build``: find or build Kubernetes binaries, print where."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from stackcheck_builders.kubernetes.binaries import DEFAULT_VERSION, ensure_binaries
from stackcheck_builders.kubernetes.errors import K8sBuildError
from stackcheck_builders.kubernetes.progress import Progress


@click.command("k8s-build")
@click.option("--k8s-bin-dir", type=click.Path(file_okay=False, path_type=Path),
              help="use the binaries in this folder instead of PATH or the cache")
@click.option("--version", "version", default=DEFAULT_VERSION, show_default=True,
              help="Kubernetes version to build (only v1.20.2 builds offline)")
@click.option("--no-path", is_flag=True, help="ignore Kubernetes binaries on PATH")
def k8s_build(k8s_bin_dir: Path | None, version: str, no_path: bool) -> None:
    """Print a folder with kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
    kubectl, kube-proxy and pause, building them from Debian's source package on first use
    (10-15 minutes on 2 cores; later runs are cache hits)."""
    progress = Progress()
    try:
        folder = ensure_binaries(version, k8s_bin_dir, progress, use_path=not no_path)
    except K8sBuildError as exc:
        progress.console.print(f"[red]stackcheck:[/red] {exc}")
        sys.exit(2)
    click.echo(str(folder))


@click.command("e2e-build")
@click.option("--version", "version", default=DEFAULT_VERSION, show_default=True,
              help="Kubernetes version of the e2e tests (only v1.20.2 builds offline)")
@click.option("--e2e-bin", type=click.Path(dir_okay=False, path_type=Path),
              help="check this e2e.test instead of building one")
def e2e_build(version: str, e2e_bin: Path | None) -> None:
    """Print the path of Kubernetes' e2e.test (ginkgo beside it), building both from Debian's
    source package on first use (about 3 minutes on 2 cores; later runs are cache hits)."""
    from stackcheck_builders.kubernetes.e2e import ensure_e2e

    progress = Progress()
    try:
        found = ensure_e2e(version, e2e_bin, progress)
    except K8sBuildError as exc:
        progress.console.print(f"[red]stackcheck:[/red] {exc}")
        sys.exit(2)
    click.echo(str(found.e2e_test))
