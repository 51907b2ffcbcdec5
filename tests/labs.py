"""Local labs and suite runs for the harness's own lab tests (one way to build, run, tear down)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stackcheck.lab import Lab
from stackcheck.ssh import close_all
from stackcheck_provisioners import ProvisionConfig, get_provisioner

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def local_lab(state_dir: Path, run_id: str, hosts: int = 3, **options: str) -> Iterator[Lab]:
    """A local lab for the length of the block, torn down by name even when bring-up fails."""
    provisioner = get_provisioner("local")
    config = ProvisionConfig(run_id=run_id, state_dir=state_dir, hosts=hosts, options=options)
    try:
        yield provisioner.create(config)
    finally:
        close_all()
        provisioner.abort(config)


def inventory(lab: Lab) -> Path:
    """The inventory file the lab wrote, as an operator would pass it."""
    assert lab.state_dir is not None
    return Path(lab.state_dir) / "inventory.yaml"


def run_pytest(lab: Lab, *args: str, timeout: int = 600,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run suites against the lab's inventory in a fresh pytest process, from the repo root."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", f"--inventory={inventory(lab)}", "-p", "no:cacheprovider",
         "-q", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, **(env or {})},
    )
