"""Time the local lab's create and destroy for a few sizes and print a table.

Usage (as root): ``.venv/bin/python benchmarks/lab_up.py [--hosts 3 9] [--repeat 1]``.
Uses its own lab name and subnet (``scbench``, ``10.213.79.0/24``) and a temporary state dir.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console
from rich.table import Table

from stackcheck.provisioner import ProvisionConfig
from stackcheck_provisioners.local import LocalProvisioner, destroy_state_dir


def once(hosts: int, base: Path, run: int) -> tuple[float, float, float, dict[str, str]]:
    """(create s, reuse s, destroy s, environment) for one lab of ``hosts`` hosts."""
    prov = LocalProvisioner()
    config = ProvisionConfig(run_id=f"bench-{hosts}-{run}", state_dir=base / f"lab{hosts}-{run}",
                             hosts=hosts, options={"name": "scbench", "subnet": "10.213.79.0/24"})
    t0 = time.monotonic()
    try:
        lab = prov.create(config)
        t1 = time.monotonic()
        prov.create(config)
        t2 = time.monotonic()
        prov.destroy(lab)
        t3 = time.monotonic()
    finally:
        destroy_state_dir(config.state_dir)
    return t1 - t0, t2 - t1, t3 - t2, lab.environment


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, nargs="+", default=[3, 9])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("lab_up.py needs root", file=sys.stderr)
        return 2
    table = Table(title="local lab bring-up / teardown (seconds)")
    for col in ("hosts", "run", "create", "reuse (create again)", "destroy", "docker", "flannel"):
        table.add_column(col, justify="right" if col not in ("docker", "flannel") else "left")
    with tempfile.TemporaryDirectory(prefix="stackcheck-bench-") as tmp:
        for hosts in args.hosts:
            for run in range(1, args.repeat + 1):
                create, reuse, destroy, env = once(hosts, Path(tmp), run)
                flannel = env.get("flannel", "?").split(" (")[0]
                table.add_row(str(hosts), str(run), f"{create:.2f}", f"{reuse:.2f}",
                              f"{destroy:.2f}", env.get("docker", "?"), flannel)
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
