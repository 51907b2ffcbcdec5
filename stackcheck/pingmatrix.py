"""The cross-host ping matrix: every pod pings every other pod, one exec per source pod.

Each source pod runs one small shell script that pings all its peers at once and prints a
line per peer, so n pods cost n concurrent execs instead of n·(n-1).
"""

from __future__ import annotations

import html
import shlex
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

#: ``ping`` arguments per pair: 2 echoes, 2 s each at most
PING = "ping -c 2 -W 2"


class Pingable(Protocol):
    """A pod that can run a shell command (busybox sh) and has an address on the overlay."""

    label: str
    ip: str

    def run(self, command: str, timeout: float) -> str:
        """Run ``command`` with ``sh -c`` in the pod; return its output (stdout and stderr)."""
        ...


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str  # "ok", "no reply", or why the source could not ping at all


def script(peers: Sequence[str]) -> str:
    """A busybox sh script that pings every peer concurrently: one ``pong|lost <ip>`` each."""
    jobs = " ".join(shlex.quote(ip) for ip in peers)
    return (f"for ip in {jobs}; do "
            f"( if {PING} \"$ip\" >/dev/null 2>&1; then echo \"pong $ip\"; "
            f"else echo \"lost $ip\"; fi ) & done; wait")


def parse(output: str, peers: Sequence[str]) -> dict[str, Outcome]:
    """Outcome per peer IP from the script's output; a peer without a line did not answer."""
    seen: dict[str, Outcome] = {}
    for line in output.splitlines():
        word, _, ip = line.strip().partition(" ")
        if word in ("pong", "lost") and ip in peers:
            seen[ip] = Outcome(word == "pong", "ok" if word == "pong" else "no reply")
    tail = output.strip()[-200:] or "(no output)"
    return {ip: seen.get(ip, Outcome(False, f"no result from the source pod: {tail}"))
            for ip in peers}


def ping_from(source: Pingable, peers: Sequence[Pingable], timeout: float) -> dict[str, Outcome]:
    """Ping every peer from ``source`` in one exec; outcome per peer label."""
    ips = [p.ip for p in peers]
    try:
        output = source.run(script(ips), timeout)
    except Exception as exc:  # noqa: BLE001 - an exec that fails is every pair's outcome
        output = f"exec in {source.label} failed: {exc}"
    by_ip = parse(output, ips)
    return {p.label: by_ip[p.ip] for p in peers}


def ping_matrix(pods: Sequence[Pingable], timeout: float = 20.0
                ) -> dict[tuple[str, str], Outcome]:
    """Outcome of every ordered pair (source label, destination label), all sources at once."""
    def row(source: Pingable) -> dict[str, Outcome]:
        return ping_from(source, [p for p in pods if p is not source], timeout)

    with ThreadPoolExecutor(max_workers=max(1, min(32, len(pods)))) as pool:
        rows = list(pool.map(row, pods))
    return {(src.label, dst): outcome
            for src, outcomes in zip(pods, rows, strict=True)
            for dst, outcome in outcomes.items()}


def failed_pairs(results: dict[tuple[str, str], Outcome]) -> list[str]:
    return [f"{a}->{b}" for (a, b), outcome in results.items() if not outcome.ok]


def matrix_html(labels: Sequence[str], results: dict[tuple[str, str], Outcome]) -> str:
    """A small HTML table: rows are sources, columns destinations; failures say why."""
    head = "".join(f"<th>{html.escape(n)}</th>" for n in labels)
    rows = []
    for src in labels:
        cells = []
        for dst in labels:
            if src == dst:
                cells.append("<td>-</td>")
                continue
            outcome = results[(src, dst)]
            colour = "#cfc" if outcome.ok else "#f99"
            text = "ok" if outcome.ok else f"FAIL: {html.escape(outcome.detail)}"
            cells.append(f"<td style='background:{colour}'>{text}</td>")
        rows.append(f"<tr><th>{html.escape(src)}</th>{''.join(cells)}</tr>")
    return f"<table border=1><tr><th>from \\ to</th>{head}</tr>{''.join(rows)}</table>"
