"""The overlay's data path: every pod pings every other pod; path MTU is the flannel MTU."""

from __future__ import annotations

import allure
import pytest

from fixtures.pods import Pod
from stackcheck.lab import Lab
from stackcheck.pingmatrix import failed_pairs, matrix_html, ping_matrix
from stackcheck.ssh import host_connection
from suites.flannel.model import read_subnet_env

pytestmark = allure.feature("data path")


@allure.id("flannel-pod-ping-matrix")
def test_every_pod_pings_every_other_pod(pods: list[Pod]) -> None:
    """n·(n-1) pairs, one concurrent exec per source pod; the matrix is attached."""
    results = ping_matrix(pods)
    allure.attach(matrix_html([p.label for p in pods], results), "ping matrix",
                  allure.attachment_type.HTML)
    failed = failed_pairs(results)
    why = "\n".join(f"  {a}->{b}: {o.detail}" for (a, b), o in results.items() if not o.ok)
    assert not failed, (
        f"expected all {len(results)} pod pairs ({pods[0].kind}) to ping; "
        f"{len(failed)} failed: {', '.join(failed)}\n{why}"
    )


@allure.id("flannel-path-mtu")
def test_path_mtu_is_the_flannel_mtu(lab: Lab, pods: list[Pod]) -> None:
    """From a host to the pod on another host: FLANNEL_MTU - 28 bytes fit with DF, +1 not."""
    src, dst = pods[0], pods[-1]
    if src.host is None:
        pytest.skip(f"pod {src.label} is not on an inventory host")
    conn = host_connection(lab, src.host)
    mtu = read_subnet_env(conn).get("FLANNEL_MTU")
    if not mtu:
        pytest.fail(f"{src.label}: no FLANNEL_MTU in /run/flannel/subnet.env")
    size = int(mtu) - 28
    fits = conn.run(f"ping -c 1 -W 2 -M do -s {size} {dst.ip}")
    assert fits.rc == 0, (
        f"{src.label}->{dst.label}: a {size}-byte ping with DF (FLANNEL_MTU {mtu} - 28) "
        f"should pass; it failed: {fits.stdout.strip()[-200:]} {fits.stderr.strip()[-200:]}"
    )
    too_big = conn.run(f"ping -c 1 -W 2 -M do -s {size + 1} {dst.ip}")
    assert too_big.rc != 0, (
        f"{src.label}->{dst.label}: a {size + 1}-byte ping with DF exceeds "
        f"FLANNEL_MTU {mtu} and should fail; it passed"
    )
