"""``stackcheck lab k8s-build``: find or build the lab's Kubernetes binaries, print their folder."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from provisioners.k8s.build import DEFAULT_VERSION, ensure_binaries
from provisioners.k8s.errors import K8sBuildError
from provisioners.k8s.progress import Progress


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
