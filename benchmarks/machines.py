"""The machines lab next to the local lab: bring-up, one real reboot, the full run, teardown.

Usage (as root): ``.venv/bin/python benchmarks/machines.py [--repeat 1] [--no-local]
[--kubernetes on|off|both]``.
Labs are built one after the other with the same name and subnet (``mbench``,
``10.213.64.0/24`` unless ``--name``/``--subnet``), each torn down before the next, also on
Ctrl-C or SIGTERM. The full run is ``pytest -n auto --dist loadgroup --allow-reboot`` against
the lab's inventory: with Kubernetes (default, ``--kubernetes on``, both labs' default) every
suite (``suites/``); without (``--kubernetes off``: ``kubernetes=false``) the etcd, docker,
flannel and atomic suites. The
machine tree and the Kubernetes build must be cached (built first if not; that time is
printed separately and not part of bring-up). The reboot column includes the node being Ready again.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import PYTHON, REPO, start
from stackcheck.atomic.boot import active_services, reboot, wait_node_ready, wait_services
from stackcheck.provisioner import ProvisionConfig
from stackcheck.ssh import close_all
from stackcheck_builders.kubernetes import ensure_binaries
from stackcheck_provisioners import get_provisioner
from stackcheck_provisioners.hostlab.progress import Progress
from stackcheck_provisioners.machines import tree

SUITES = ("suites/etcd", "suites/docker", "suites/flannel", "suites/atomic")
ALL_SUITES = ("suites",)


def full_run(inventory: Path, timeout: float, suites: tuple[str, ...] = SUITES
             ) -> tuple[float, str]:
    t0 = time.monotonic()
    out = subprocess.run(
        [PYTHON, "-m", "pytest", f"--inventory={inventory}", "-n", "auto", "--dist",
         "loadgroup", "--allow-reboot", "-p", "no:cacheprovider", "-q", *suites],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
    lines = [ln for ln in out.stdout.splitlines() if " in " in ln and ("passed" in ln
                                                                      or "failed" in ln)]
    return time.monotonic() - t0, (lines[-1] if lines else out.stdout[-300:]).strip("= ")


def one_lab(kind: str, k8s: bool, base: Path, run: int, args: argparse.Namespace
            ) -> dict[str, object]:
    prov = get_provisioner(kind)
    options = {"name": args.name, "subnet": args.subnet, "kubernetes": str(k8s).lower()}
    label = f"{kind}{' + kubernetes' if k8s else ''}"
    config = ProvisionConfig(run_id=f"bench-{kind}-{run}", state_dir=base / f"{kind}{run}{k8s}",
                             hosts=3, options=options)
    row: dict[str, object] = {"lab": label, "run": run}
    try:
        t0 = time.monotonic()
        lab = prov.create(config)
        row["bring-up"] = time.monotonic() - t0
        # the suites' own reboot path (machines: `systemctl reboot` over SSH; local: simulated)
        runner = prov
        host = lab.hosts[1]
        services = active_services(lab, runner, host)
        t0 = time.monotonic()
        reboot(lab, runner, host)
        left = wait_services(lab, runner, host, services)
        not_ready = wait_node_ready(lab, host)
        row["reboot"] = time.monotonic() - t0
        if not_ready:
            row["reboot node"] = not_ready
        row["reboot services"] = ",".join(services) + (f" (inactive: {left})" if left else "")
        close_all()
        row["full run"], row["result"] = full_run(Path(config.state_dir) / "inventory.yaml",
                                                  args.timeout, ALL_SUITES if k8s else SUITES)
        t0 = time.monotonic()
        prov.destroy(lab)
        row["teardown"] = time.monotonic() - t0
    finally:
        close_all()
        prov.abort(config)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-local", action="store_true", help="only the machines lab")
    parser.add_argument("--name", default="mbench")
    parser.add_argument("--subnet", default="10.213.64.0/24")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--kubernetes", choices=("on", "off", "both"), default="on",
                        help="labs with Kubernetes (every suite), without, or both")
    args = parser.parse_args()
    facts = start()
    t0 = time.monotonic()
    built = tree.cached() is None
    tree.ensure(Progress("machine tree"))
    if built:
        print(f"machine tree built in {time.monotonic() - t0:.1f}s (first run only)")
    if args.kubernetes != "off":
        t0 = time.monotonic()
        ensure_binaries()
        print(f"Kubernetes binaries ready in {time.monotonic() - t0:.1f}s (cached after once)")
    flags = {"on": [True], "off": [False], "both": [True, False]}[args.kubernetes]
    kinds = [(kind, k8s) for k8s in flags
             for kind in (["machines"] if args.no_local else ["machines", "local"])]
    rows = []
    with tempfile.TemporaryDirectory(prefix="stackcheck-mbench-") as tmp:
        for run in range(1, args.repeat + 1):
            for kind, k8s in kinds if run % 2 else kinds[::-1]:
                rows.append(one_lab(kind, k8s, Path(tmp), run, args))
    print(f"machine: {facts}")
    cols = ("bring-up", "reboot", "full run", "teardown")
    print("| lab | " + " | ".join(cols) + " | result |")
    print("|---|" + "---|" * (len(cols) + 1))
    for kind in dict.fromkeys(str(r["lab"]) for r in rows):
        mine = [r for r in rows if r["lab"] == kind]
        cells = []
        for col in cols:
            values = [float(r[col]) for r in mine if col in r]  # type: ignore[arg-type]
            cells.append(f"{statistics.median(values):.1f} s ({min(values):.1f}..{max(values):.1f})"
                         if values else "-")
        print(f"| {kind} | " + " | ".join(cells) + f" | {mine[-1].get('result', '?')} |")
    for r in rows:
        print(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
