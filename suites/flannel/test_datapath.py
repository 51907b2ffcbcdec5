"""The overlay's data path: every pod pings every other pod; every host's path MTU to the pods
of the other hosts is its FLANNEL_MTU. Both all-pairs checks bound their load and re-probe
lost pairs once (``stackcheck.pingmatrix``)."""

from __future__ import annotations

import json
import os
import shlex
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import allure
import pytest

from stackcheck.lab import Lab
from stackcheck.pingmatrix import (
    by_reason,
    concurrency_for,
    failed_pairs,
    matrix_html,
    matrix_json,
    mtu_probe,
    ping_matrix,
    probe_matrix,
    recovered_pairs,
)
from stackcheck.ssh import host_connection
from stackcheck_fixtures.pods import KubePod, Pod, Sample
from stackcheck_reports import evidence

# one worker runs both checks: one set of pods (n containers) per run, not one per worker
pytestmark = [allure.feature("data path"), pytest.mark.xdist_group("datapath")]


def _kind(pods: list[Pod]) -> str:
    """The evidence's "kind": Kubernetes "pods" or "docker" containers."""
    return "pods" if isinstance(pods[0], KubePod) else "docker"


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


def _coverage(sample: Sample, why: str, results: dict) -> dict:
    """What the evidence says about the pairs covered: how many, which were sampled, why."""
    out: dict = {"coverage": why, "pairs probed": len(results)}
    if sample is not None:
        out["sampled pairs"] = {f"{a}->{b}": reason for (a, b), reason in sample.items()}
    return out


@allure.id("flannel-pod-ping-matrix")
def test_every_pod_pings_every_other_pod(pods: list[Pod], pingmatrix_file: Path,
                                         pair_sample) -> None:
    """n·(n-1) pairs (a sample above a host count: ``stackcheck.sampling``), one exec per
    source pod, bounded concurrency, lost pairs re-probed once; the matrix is attached and
    written to ``<run_dir>/evidence/pingmatrix.json``."""
    conc = concurrency_for(len(pods))
    labels = [p.label for p in pods]
    sample, why = pair_sample(labels)
    results = ping_matrix(pods, conc, pairs=sample)
    evidence.attach_html("ping matrix", matrix_html(labels, results))
    matrix = matrix_json(_kind(pods), labels, results)
    _write(pingmatrix_file, matrix)
    recovered = recovered_pairs(results)
    evidence.attach_json("ping matrix", {**matrix, "concurrency": str(conc),
                                         "recovered": recovered,
                                         **_coverage(sample, why, results)})
    failed = failed_pairs(results)
    assert not failed, (
        f"expected all {len(results)} pod pairs ({pods[0].kind}) to ping; "
        f"{len(failed)} failed: {', '.join(failed)}\n{by_reason(results)}"
    )


class HostShell:
    """A lab host as a probe source: ``sh -c`` over its shared SSH connection."""

    def __init__(self, lab: Lab, name: str) -> None:
        self.label = name
        self.conn = host_connection(lab, lab.host(name))
        env = self.conn.run("cat /run/flannel/subnet.env").stdout  # no testinfra OS detection
        self.mtu = next((line.split("=", 1)[1].strip() for line in env.splitlines()
                         if line.startswith("FLANNEL_MTU=")), "")

    def run(self, command: str, timeout: float) -> str:
        result = self.conn.run(f"timeout {timeout:g} sh -c {shlex.quote(command)}")
        return result.stdout + result.stderr


@allure.id("flannel-path-mtu")
def test_path_mtu_is_the_flannel_mtu(lab: Lab, pods: list[Pod], pair_sample) -> None:
    """From every host to the pod on every other host: a plain ping passes ("no path"
    otherwise), FLANNEL_MTU - 28 bytes fit with DF and one byte more does not ("MTU")."""
    hosts = [p.host.name for p in pods if p.host is not None]
    if len(hosts) < 2:
        pytest.skip("the path MTU needs pods on two inventory hosts")
    with ThreadPoolExecutor(max_workers=concurrency_for(len(hosts)).sources) as pool:
        sources = list(pool.map(lambda name: HostShell(lab, name), hosts))
    no_env = [s.label for s in sources if not s.mtu.isdigit()]
    if no_env:
        pytest.fail(f"no FLANNEL_MTU in /run/flannel/subnet.env of {', '.join(no_env)}")
    targets = {p.host.name: p.ip for p in pods if p.host is not None}
    conc = concurrency_for(len(sources))
    sample, why = pair_sample(hosts)
    results = probe_matrix(sources, targets, conc,
                           probe=lambda s: mtu_probe(int(s.mtu)),  # type: ignore[attr-defined]
                           pairs=sample)
    evidence.attach_json("path MTU", {"concurrency": str(conc),
                                      "mtu": {s.label: s.mtu for s in sources},
                                      **matrix_json(_kind(pods), hosts, results),
                                      **_coverage(sample, why, results)})
    failed = failed_pairs(results)
    assert not failed, (
        f"expected every host's path MTU to the pods of the others to be its FLANNEL_MTU; "
        f"{len(failed)} of {len(results)} pairs failed: {by_reason(results)}"
    )
