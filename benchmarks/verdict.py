"""Benchmark 6: time to verdict on a broken lab, next to the healthy run.

Three variants of the conformance run (``-n auto --dist loadgroup``, Allure on) against one
3-host local lab, interleaved:

- ``healthy``: the lab as built;
- ``etcd majority down``: etcd stopped on h2 and h3 before the run (started again after);
- ``h3 unreachable``: an inventory whose h3 (and its etcd endpoint) is at an address of the
  lab's own subnet where nothing answers, SSH connect timeout 5 s;
- ``docker stopped on h3``: h3's Docker daemon stopped before the run (target: the healthy
  run + 15 s).

With ``--kubernetes``, a second lab with Kubernetes (``benchk8s`` on 10.221.60.0/24, or
``--kubernetes-inventory``) runs the Kubernetes suite and the data path
(``suites/kubernetes suites/flannel/test_datapath.py``) in three more variants: ``k8s
healthy``, ``kubelet stopped on h3`` (target: + 15 s) and ``scheduler stopped`` (target: the
healthy Kubernetes suite + 30 s).

Prints the median and spread per variant, its ratio to the healthy run, and the preflight's
own time. Usage: ``.venv/bin/python benchmarks/verdict.py [--repeat 3] [--inventory lab.yaml]
[--kubernetes [--kubernetes-inventory lab.yaml]] [--pytest-args "-m 'not disruptive'"]``.
Without ``--inventory`` it builds a 3-host lab ``bench`` on 10.213.60.0/24
(kubernetes=false) and removes it at the end.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    REPO,
    Timed,
    interleaved,
    lab_parser,
    local_lab,
    machine,
    pytest_argv,
    ratio,
    run,
    save,
    start,
)

from stackcheck.lab import Lab
from stackcheck_provisioners import get_provisioner

#: what the Kubernetes variants run, and their names (compared with "k8s healthy")
KUBE_SUITES = ["suites/kubernetes", "suites/flannel/test_datapath.py"]
KUBE_VARIANTS = ("k8s healthy", "kubelet stopped on h3", "scheduler stopped")


def dead_host_inventory(lab: Lab, inventory: Path, host: str = "h3") -> Path:
    """A copy of ``inventory`` with ``host`` at an unused address of the lab's subnet."""
    data = yaml.safe_load(inventory.read_text())
    old = lab.host(host).address
    network = ipaddress.ip_network(f"{old}/24", strict=False)
    dead = str(network.network_address + 99)
    for entry in data["hosts"]:
        if entry["name"] == host:
            entry["address"] = dead
    data["etcd"]["endpoints"] = [e.replace(old, dead) for e in data["etcd"]["endpoints"]]
    data["ssh"]["connect_timeout"] = 5
    out = inventory.parent / f"inventory-dead-{host}.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def etcd_service(lab: Lab, hosts: list[str], action: str, service: str = "etcd") -> None:
    provisioner = get_provisioner(lab.provisioner)
    for name in hosts:
        host = lab.host(name)
        result = provisioner.service(lab, host, service, action)
        if not result.ok:
            raise RuntimeError(f"{name}: {service} {action}: {result.stderr.strip()}")


def stopped(lab: Lab, host: str, service: str, measure: Callable[[], Timed]) -> Timed:
    """``measure()`` with ``service`` stopped on ``host``; started again whatever happens."""
    etcd_service(lab, [host], "stop", service)
    try:
        return measure()
    finally:
        etcd_service(lab, [host], "start", service)


def preflight_seconds() -> float | None:
    """The preflight's own time, from the newest run folder of the project."""
    runs = sorted((REPO / ".stackcheck" / "runs").glob("*/preflight.json"),
                  key=lambda p: p.stat().st_mtime)
    return json.loads(runs[-1].read_text())["elapsed_s"] if runs else None


def main() -> int:
    parser = lab_parser(__doc__, repeat=3, timeout=1800)
    parser.add_argument("--kubernetes", action="store_true",
                        help="also time kubelet and scheduler faults on a lab with Kubernetes")
    parser.add_argument("--kubernetes-inventory", type=Path,
                        help="the running lab with Kubernetes to use (left running)")
    args = parser.parse_args()
    facts = start()
    extra = shlex.split(args.pytest_args)
    preflights: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="stackcheck-verdict-") as tmp:
        work = Path(tmp)
        with local_lab(args.hosts, work, inventory=args.inventory) as bench:
            dead = dead_host_inventory(bench.lab, bench.inventory)

            def conformance(inventory: Path, name: str) -> Timed:
                timed = run(pytest_argv(inventory, work / name, extra=extra),
                            timeout=args.timeout)
                seconds = preflight_seconds()
                if seconds is not None:
                    preflights.setdefault(name, []).append(seconds)
                return timed

            def majority_down() -> Timed:
                etcd_service(bench.lab, ["h2", "h3"], "stop")
                try:
                    return conformance(bench.inventory, "etcd majority down")
                finally:
                    etcd_service(bench.lab, ["h2", "h3"], "start")

            variants: dict[str, Callable[[], Timed]] = {
                "healthy": lambda: conformance(bench.inventory, "healthy"),
                "etcd majority down": majority_down,
                "h3 unreachable": lambda: conformance(dead, "h3 unreachable"),
                "docker stopped on h3": lambda: stopped(
                    bench.lab, "h3", "docker",
                    lambda: conformance(bench.inventory, "docker stopped on h3")),
            }
            series = interleaved(variants, args.repeat)
        if args.kubernetes:
            kube_options = {"name": "benchk8s", "subnet": "10.221.60.0/24",
                            "kubernetes": "true"}
            with local_lab(args.hosts, work, kube_options,
                           inventory=args.kubernetes_inventory) as kbench:
                def suite(name: str) -> Timed:
                    timed = run(pytest_argv(kbench.inventory, work / name,
                                            extra=[*KUBE_SUITES, *extra]),
                                timeout=args.timeout)
                    seconds = preflight_seconds()
                    if seconds is not None:
                        preflights.setdefault(name, []).append(seconds)
                    return timed

                masters = kbench.lab.hosts_with("master") or kbench.lab.hosts[:1]
                kube_variants: dict[str, Callable[[], Timed]] = {
                    "k8s healthy": lambda: suite("k8s healthy"),
                    "kubelet stopped on h3": lambda: stopped(
                        kbench.lab, "h3", "kubelet", lambda: suite("kubelet stopped on h3")),
                    "scheduler stopped": lambda: stopped(
                        kbench.lab, masters[0].name, "kube-scheduler",
                        lambda: suite("scheduler stopped")),
                }
                series.update(interleaved(kube_variants, args.repeat))
        facts["load_end"] = machine()["load_start"]
    healthy = series["healthy"].median
    kube_healthy = series["k8s healthy"].median if "k8s healthy" in series else None
    print(f"\nmachine: {facts['cpus']} x {facts['cpu']}, {facts['memory_gib']} GiB; "
          f"load {facts['load_start']} -> {facts['load_end']}; {facts['date']}")
    print(f"{'variant':<22} {'median s':>9} {'spread':>13} {'/ healthy':>10} {'preflight s':>12}")
    for name, s in series.items():
        pre = preflights.get(name, [])
        pre_text = f"{max(pre):.1f}" if pre else "-"
        base = kube_healthy if name in KUBE_VARIANTS and kube_healthy else healthy
        print(f"{name:<22} {s.median:>9.1f} {s.spread():>13} "
              f"{ratio(s.median, base):>10.2f} {pre_text:>12}  ({s.median - base:+.1f} s)")
    save(args.json, {"machine": facts, "pytest_args": extra,
                     "series": {n: s.values for n, s in series.items()},
                     "preflight_s": preflights})
    return 0


if __name__ == "__main__":
    sys.exit(main())
