"""The harness at scale: a 24-host local lab (no Kubernetes) gets right verdicts.

Bring-up, the non-disruptive suites all green, a partition between two hosts fails exactly
their pairs (ping matrix and path MTU, "no path"), teardown leaves nothing. 24 hosts fit CI
in about two minutes; ``STACKCHECK_SCALE_HOSTS=48`` runs the same at 48 (``benchmarks/
scale.py`` measures 48 too).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_local_lab import assert_nothing_left, snapshot

from stackcheck.lab import Lab
from stackcheck.ssh import close_all, host_connection
from stackcheck_provisioners import ProvisionConfig, get_provisioner

REPO = Path(__file__).resolve().parent.parent
HOSTS = int(os.environ.get("STACKCHECK_SCALE_HOSTS", "24"))
NAME, SUBNET = "scale", "10.213.48.0/24"

pytestmark = [
    pytest.mark.lab,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="a local lab needs root"),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    provisioner = get_provisioner("local")
    state_dir = tmp_path_factory.mktemp("scalelab") / "lab"
    config = ProvisionConfig(run_id="scale", state_dir=state_dir, hosts=HOSTS,
                             options={"subnet": SUBNET, "name": NAME, "kubernetes": "false"})
    before = snapshot(NAME)
    try:
        yield {"lab": provisioner.create(config), "prov": provisioner, "before": before,
               "state_dir": state_dir}
    finally:
        close_all()
        provisioner.abort(config)


def run_suite(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    assert lab.state_dir is not None
    return subprocess.run(
        [sys.executable, "-m", "pytest", f"--inventory={Path(lab.state_dir) / 'inventory.yaml'}",
         "-p", "no:cacheprovider", "-q", "-rfE", "--tb=line", *args],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False,
    )


def test_non_disruptive_suites_pass_at_scale(built: dict) -> None:
    result = run_suite(built["lab"], "-n", "2", "--dist", "loadgroup", "-m", "not disruptive",
                       "suites")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) > 5 * HOSTS, result.stdout[-1000:]


@pytest.mark.skipif(shutil.which("iptables") is None, reason="iptables is not installed")
def test_a_partition_fails_exactly_its_pairs_at_scale(built: dict) -> None:
    """vxlan dropped both ways between h1 and the last host: those 2 pairs fail, as "no path"
    in the path MTU check; the other n·(n-1) - 2 pairs pass."""
    lab: Lab = built["lab"]
    a, b = lab.host("h1"), lab.host(f"h{HOSTS}")
    rules = [(b, f"INPUT -p udp --dport 8472 -s {a.address} -j DROP"),
             (a, f"INPUT -p udp --dport 8472 -s {b.address} -j DROP")]
    for host, rule in rules:
        assert host_connection(lab, host).run(f"iptables -I {rule}").rc == 0
    try:
        result = run_suite(lab, "-n", "2", "suites/flannel/test_datapath.py")
    finally:
        for host, rule in rules:
            host_connection(lab, host).run(f"iptables -D {rule}")
    pair = {f"h1->h{HOSTS}", f"h{HOSTS}->h1"}
    assert result.returncode == 1, result.stdout[-3000:]
    # the ping matrix's own line (the path MTU check's may come first in the output)
    matrix = re.search(r"pod pairs \([^)]*\) to ping; \d+ failed: (.*)", result.stdout)
    assert matrix, result.stdout[-3000:]
    assert set(matrix.group(1).split(", ")) == pair, result.stdout[-3000:]
    mtu = re.search(rf"2 of {HOSTS * (HOSTS - 1)} pairs failed: (.*)", result.stdout)
    assert mtu, result.stdout[-3000:]
    assert mtu.group(1).startswith("no path: a plain ping gets no reply"), mtu.group(1)
    assert set(re.findall(r"h\d+->h\d+", mtu.group(1))) == pair


def test_teardown_leaves_nothing_at_scale(built: dict) -> None:
    close_all()
    built["prov"].destroy(built["lab"])
    assert_nothing_left(built["before"], NAME, built["state_dir"])
