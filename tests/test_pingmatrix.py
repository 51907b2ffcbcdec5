"""The all-pairs probes: one script per source, bounded lanes and sources, one re-probe."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stackcheck.pingmatrix import (
    Concurrency,
    concurrency_for,
    failed_pairs,
    matrix_html,
    matrix_json,
    mtu_probe,
    parse,
    ping_matrix,
    probe_matrix,
    recovered_pairs,
    script,
)

SH = shutil.which("dash") or "/bin/sh"  # not busybox sh: its own ping applet would win
ALL_AT_ONCE = Concurrency(32, 32)


@dataclass
class ShellPod:
    """Runs the script in a POSIX sh with a stand-in ``ping`` (no packet is ever sent)."""

    label: str
    ip: str
    bin_dir: Path
    runs: list[str] = field(default_factory=list)

    def run(self, command: str, timeout: float) -> str:
        self.runs.append(command)
        path = f"{self.bin_dir}:/usr/bin:/bin"  # the stand-in ping first
        done = subprocess.run([SH, "-c", command], capture_output=True,
                              text=True, timeout=timeout, env={"PATH": path})
        return done.stdout + done.stderr


def stand_in_ping(tmp_path: Path, body: str) -> Path:
    """A ``ping`` whose last argument (the address) is ``$last``; the addresses are loopback
    ones, should a real ping ever run instead."""
    ping = tmp_path / "ping"
    ping.write_text(f'#!/bin/sh\nfor a; do last=$a; done\n{body}\n')
    ping.chmod(0o755)
    return tmp_path


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A ``ping`` that succeeds for 127.0.0.2 and .3 only."""
    return stand_in_ping(tmp_path, 'case "$last" in 127.0.0.2|127.0.0.3) exit 0;; '
                                   '*) exit 1;; esac')


def pods(bin_dir: Path, count: int = 3) -> list[ShellPod]:
    return [ShellPod(f"h{i}", f"127.0.0.{i}", bin_dir) for i in range(1, count + 1)]


def test_one_exec_per_source_and_one_outcome_per_pair(bin_dir: Path) -> None:
    sources = pods(bin_dir)
    results = ping_matrix(sources, ALL_AT_ONCE, reprobe=ALL_AT_ONCE)
    assert [len(p.runs) for p in sources] == [1, 2, 2]  # h2 and h3 re-probe their lost h1
    assert len(results) == 6
    assert sorted(failed_pairs(results)) == ["h2->h1", "h3->h1"]
    assert results[("h2", "h1")].detail.startswith("no reply (again on the re-probe")
    table = matrix_html([p.label for p in sources], results)
    assert table.count("FAIL: no reply") == 2 and table.count(">ok<") == 4


def test_a_pair_lost_once_is_recovered_not_failed(tmp_path: Path) -> None:
    """The first ping to each address fails, the second passes (a marker file per address)."""
    flaky = stand_in_ping(tmp_path, f'm={tmp_path}/seen-$last\n'
                                    'if [ -e "$m" ]; then exit 0; fi\n: > "$m"; exit 1')
    results = ping_matrix(pods(flaky, 2), ALL_AT_ONCE, reprobe=ALL_AT_ONCE)
    assert failed_pairs(results) == []
    assert sorted(recovered_pairs(results)) == ["h1->h2", "h2->h1"]
    assert results[("h1", "h2")].ok
    assert "answered on the re-probe" in results[("h1", "h2")].detail
    data = matrix_json("docker", ["h1", "h2"], results)
    assert data["kind"] == "docker" and data["hosts"] == ["h1", "h2"]
    assert data["pairs"]["h1->h2"]["status"] == "recovered"
    assert "recovered:" in matrix_html(["h1", "h2"], results)


def test_sources_and_lanes_stay_within_the_bound(tmp_path: Path) -> None:
    """A ping that notes how many pings run at once; 8 sources x 7 peers, 2 x 2 at most."""
    probe_dir = stand_in_ping(tmp_path, (
        f'd={tmp_path}/inflight; mkdir -p "$d"; : > "$d/$$"; '
        f'ls "$d" | wc -l >> {tmp_path}/counts; sleep 0.05; rm -f "$d/$$"; exit 0'))
    active, peak = [0], [0]
    lock = threading.Lock()

    @dataclass
    class Counting(ShellPod):
        def run(self, command: str, timeout: float) -> str:
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            try:
                return super().run(command, timeout)
            finally:
                with lock:
                    active[0] -= 1

    sources = [Counting(f"h{i}", f"127.0.0.{i}", probe_dir) for i in range(1, 9)]
    results = ping_matrix(sources, Concurrency(2, 2))
    assert len(results) == 56 and not failed_pairs(results)
    assert peak[0] <= 2
    counts = [int(c) for c in (tmp_path / "counts").read_text().split()]
    assert len(counts) == 56 and max(counts) <= 4


def test_concurrency_is_sized_from_the_lab() -> None:
    small = concurrency_for(3, in_flight=64)
    assert (small.sources, small.lanes) == (3, 2)  # everything at once
    big = concurrency_for(48, in_flight=64)
    assert big.in_flight <= 64 and big.lanes == 8 and big.sources == 8
    assert concurrency_for(500, in_flight=64).in_flight <= 64
    assert concurrency_for(1, in_flight=64).sources == 1


def test_concurrency_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKCHECK_PING_CONCURRENCY", "16")
    assert concurrency_for(48).in_flight <= 16
    monkeypatch.setenv("STACKCHECK_PING_CONCURRENCY", "nonsense")
    assert concurrency_for(48).in_flight <= 64


def test_script_lanes_cover_every_peer_once() -> None:
    peers = [f"127.0.0.{i}" for i in range(1, 8)]
    text = script(peers, lanes=3)
    assert text.count(") &") == 3
    assert sorted(ip for ip in peers if ip in text) == peers
    assert script(peers[:1], lanes=5).count(") &") == 1


def test_the_reprobe_stops_at_its_budget(bin_dir: Path) -> None:
    results = probe_matrix(pods(bin_dir), {f"h{i}": f"127.0.0.{i}" for i in (1, 2, 3)},
                           ALL_AT_ONCE, reprobe_budget_s=-1)
    assert sorted(failed_pairs(results)) == ["h2->h1", "h3->h1"]
    assert "not re-probed" in results[("h2", "h1")].detail


def test_a_peer_without_a_line_fails_with_the_output() -> None:
    outcomes = parse("pong 127.0.0.2\nsh: ping: not found\n", ["127.0.0.2", "127.0.0.3"])
    assert outcomes["127.0.0.2"].ok
    assert not outcomes["127.0.0.3"].ok
    assert "no result from the source" in outcomes["127.0.0.3"].detail
    assert "ping: not found" in outcomes["127.0.0.3"].detail


def test_an_exec_that_raises_fails_every_pair_of_its_source() -> None:
    @dataclass
    class Broken:
        label: str
        ip: str

        def run(self, command: str, timeout: float) -> str:
            raise ConnectionError("websocket closed")

    start = time.monotonic()
    results = ping_matrix([Broken("a", "127.0.0.1"), Broken("b", "127.0.0.2")])
    assert time.monotonic() - start < 5
    assert sorted(failed_pairs(results)) == ["a->b", "b->a"]
    assert "exec in a failed: websocket closed" in results[("a", "b")].detail


def test_script_quotes_addresses() -> None:
    assert "'127.0.0.1;reboot'" in script(["127.0.0.1;reboot"])


def test_mtu_probe_tells_no_path_from_mtu(tmp_path: Path) -> None:
    """.2 answers nothing (no path), .3 answers plain pings only (MTU too small), .4 answers
    even one byte over the MTU (MTU too big), .5 behaves."""
    ping = stand_in_ping(tmp_path, (
        'case "$*" in *"-s 1423"*) big=1;; *"-s 1422"*) full=1;; esac\n'
        'case "$last" in 127.0.0.2) exit 1;; 127.0.0.3) [ -z "$full" ] || exit 1;; '
        '127.0.0.4) exit 0;; esac\n[ -z "$big" ]'))
    source = ShellPod("h1", "127.0.0.1", ping)
    targets = {f"h{i}": f"127.0.0.{i}" for i in (2, 3, 4, 5)}
    results = probe_matrix([source], targets, ALL_AT_ONCE, mtu_probe(1450),
                           reprobe=ALL_AT_ONCE)
    assert results[("h1", "h2")].detail.startswith("no path: a plain ping gets no reply")
    assert results[("h1", "h3")].detail.startswith(
        "MTU: a plain ping answers, a 1422-byte ping with DF (FLANNEL_MTU 1450 - 28) does not")
    assert results[("h1", "h4")].detail.startswith("MTU: a 1423-byte ping with DF")
    assert results[("h1", "h5")].status == "ok"
