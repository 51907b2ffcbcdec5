"""The ping matrix: one script per source pod, parsed into one outcome per pair."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stackcheck.pingmatrix import failed_pairs, matrix_html, parse, ping_matrix, script

SH = shutil.which("dash") or "/bin/sh"  # not busybox sh: its own ping applet would win


@dataclass
class ShellPod:
    """Runs the script in a POSIX sh with a stand-in ``ping`` that answers from a set."""

    label: str
    ip: str
    bin_dir: Path
    runs: list[str] = field(default_factory=list)

    def run(self, command: str, timeout: float) -> str:
        self.runs.append(command)
        done = subprocess.run([SH, "-c", command], capture_output=True,
                              text=True, timeout=timeout, env={"PATH": str(self.bin_dir)})
        return done.stdout + done.stderr


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A ``ping`` that succeeds for 127.0.0.2 and .3 only; it sends no packet (and the
    addresses are loopback ones, should a real ping ever run instead)."""
    ping = tmp_path / "ping"
    ping.write_text('#!/bin/sh\nfor a; do last=$a; done\n'
                    'case "$last" in 127.0.0.2|127.0.0.3) exit 0;; *) exit 1;; esac\n')
    ping.chmod(0o755)
    return tmp_path


def test_one_exec_per_source_and_one_outcome_per_pair(bin_dir: Path) -> None:
    pods = [ShellPod(f"h{i}", f"127.0.0.{i}", bin_dir) for i in (1, 2, 3)]
    results = ping_matrix(pods)
    assert [len(p.runs) for p in pods] == [1, 1, 1]
    assert len(results) == 6
    assert sorted(failed_pairs(results)) == ["h2->h1", "h3->h1"]
    assert results[("h2", "h1")].detail == "no reply"
    table = matrix_html([p.label for p in pods], results)
    assert table.count("FAIL: no reply") == 2 and table.count(">ok<") == 4


def test_a_peer_without_a_line_fails_with_the_output() -> None:
    outcomes = parse("pong 127.0.0.2\nsh: ping: not found\n", ["127.0.0.2", "127.0.0.3"])
    assert outcomes["127.0.0.2"].ok
    assert not outcomes["127.0.0.3"].ok
    assert "no result from the source pod" in outcomes["127.0.0.3"].detail
    assert "ping: not found" in outcomes["127.0.0.3"].detail


def test_an_exec_that_raises_fails_every_pair_of_its_source() -> None:
    @dataclass
    class Broken:
        label: str
        ip: str

        def run(self, command: str, timeout: float) -> str:
            raise ConnectionError("websocket closed")

    results = ping_matrix([Broken("a", "127.0.0.1"), Broken("b", "127.0.0.2")])
    assert sorted(failed_pairs(results)) == ["a->b", "b->a"]
    assert "exec in a failed: websocket closed" in results[("a", "b")].detail


def test_script_quotes_addresses() -> None:
    assert "'127.0.0.1;reboot'" in script(["127.0.0.1;reboot"])
