"""The overlay's data path: every pod pings every other pod; path MTU is the flannel MTU."""

from __future__ import annotations

import html
from concurrent.futures import ThreadPoolExecutor

import allure
import pytest

from fixtures.pods import Pod
from stackcheck.lab import Lab
from stackcheck.ssh import host_connection
from suites.flannel.model import read_subnet_env

pytestmark = allure.feature("data path")


def matrix_html(pods: list[Pod], results: dict[tuple[str, str], bool]) -> str:
    names = [p.host.name for p in pods]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    for src in names:
        cells = "".join(
            "<td>-</td>" if src == dst else
            f"<td style='background:{'#cfc' if results[(src, dst)] else '#f99'}'>"
            f"{'ok' if results[(src, dst)] else 'FAIL'}</td>"
            for dst in names
        )
        rows.append(f"<tr><th>{html.escape(src)}</th>{cells}</tr>")
    return f"<table border=1><tr><th>from \\ to</th>{head}</tr>{''.join(rows)}</table>"


@allure.id("flannel-pod-ping-matrix")
def test_every_pod_pings_every_other_pod(lab: Lab, pods: list[Pod]) -> None:
    pairs = [(a, b) for a in pods for b in pods if a is not b]

    def ping(pair: tuple[Pod, Pod]) -> bool:
        src, dst = pair
        return src.exec(lab, f"ping -c 2 -W 2 {dst.ip}", timeout=15).rc == 0

    with ThreadPoolExecutor(max_workers=min(32, len(pairs))) as pool:
        outcomes = list(pool.map(ping, pairs))
    results = {(a.host.name, b.host.name): ok for (a, b), ok in zip(pairs, outcomes, strict=True)}
    allure.attach(matrix_html(pods, results), "ping matrix", allure.attachment_type.HTML)
    failed = [f"{a}->{b}" for (a, b), ok in results.items() if not ok]
    assert not failed, (
        f"expected all {len(pairs)} pod pairs to ping; {len(failed)} failed: {', '.join(failed)}"
    )


@allure.id("flannel-path-mtu")
def test_path_mtu_is_the_flannel_mtu(lab: Lab, pods: list[Pod]) -> None:
    src, dst = pods[0], pods[-1]
    conn = host_connection(lab, src.host)
    mtu = read_subnet_env(conn).get("FLANNEL_MTU")
    if not mtu:
        pytest.fail(f"{src.host.name}: no FLANNEL_MTU in /run/flannel/subnet.env")
    size = int(mtu) - 28
    fits = conn.run(f"ping -c 1 -W 2 -M do -s {size} {dst.ip}")
    assert fits.rc == 0, (
        f"{src.host.name}->{dst.host.name}: a {size}-byte ping with DF (FLANNEL_MTU {mtu} - 28) "
        f"should pass; it failed: {fits.stdout.strip()[-200:]} {fits.stderr.strip()[-200:]}"
    )
    too_big = conn.run(f"ping -c 1 -W 2 -M do -s {size + 1} {dst.ip}")
    assert too_big.rc != 0, (
        f"{src.host.name}->{dst.host.name}: a {size + 1}-byte ping with DF exceeds "
        f"FLANNEL_MTU {mtu} and should fail; it passed"
    )
