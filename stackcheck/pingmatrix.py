"""All-pairs probes (the ping matrix, the path MTU) with bounded concurrency and one re-probe.

Each source runs one small shell script (one exec) that probes its peers in a few parallel
lanes and prints one ``<word> <ip>`` line per peer. How many sources run at once and how many
lanes each has is sized from the lab (:func:`concurrency_for`), so the probes' own load stays
bounded: at 48 hosts, 2,256 pings sent within a second lose ~60 % of their replies on a lab
whose data path works. Pairs that fail are probed once more at low concurrency; a pair that
answers then is ``recovered`` (reported, not a failure), a pair that fails twice ``failed``.
"""

from __future__ import annotations

import html
import math
import os
import shlex
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

#: ``ping`` arguments per pair: 2 echoes (the second as soon as the first answers), 2 s wait
PING = "ping -c 2 -A -W 2"
#: pings in flight across the whole lab at most (STACKCHECK_PING_CONCURRENCY overrides)
DEFAULT_IN_FLIGHT = 64
#: the re-probe of failed pairs: sources at once x lanes each
REPROBE_SOURCES = 4
REPROBE_LANES = 2
#: seconds the whole re-probe may take; pairs not re-probed by then stay failed
REPROBE_BUDGET_S = 120.0

OK, RECOVERED, FAILED = "ok", "recovered", "failed"


class Runner(Protocol):
    """Something that runs a shell command (``sh -c``): a pod, or a host over SSH."""

    label: str

    def run(self, command: str, timeout: float) -> str:
        """Run ``command``; return its output (stdout and stderr)."""
        ...


class Pingable(Runner, Protocol):
    """A pod that can run a shell command (busybox sh) and has an address on the overlay."""

    ip: str


@dataclass(frozen=True)
class Outcome:
    status: str  # "ok", "recovered" or "failed"
    detail: str  # "ok", "no reply", what the re-probe saw, or why the source could not probe

    @property
    def ok(self) -> bool:
        return self.status != FAILED


@dataclass(frozen=True)
class Probe:
    """What one source does to one peer: an sh function body on ``$1`` that prints one line
    ``<word> $1``; ``words`` maps each word to (passed, detail); ``seconds``: worst case."""

    body: str
    words: Mapping[str, tuple[bool, str]]
    seconds: float


PING_PROBE = Probe(
    body=f'if {PING} "$1" >/dev/null 2>&1; then echo "pong $1"; else echo "lost $1"; fi',
    words={"pong": (True, "ok"), "lost": (False, "no reply")},
    seconds=4.0,
)


#: IP + ICMP headers: a ping of MTU - 28 data bytes fills the MTU exactly
ICMP_OVERHEAD = 28


def mtu_probe(mtu: int) -> Probe:
    """Plain ping first ("no path" when it fails), then DF pings filling the MTU and one byte
    over it: "MTU" when the first fails or the second passes (a reply within 0.3 s: the
    kernel refuses a too-big DF packet at once, a peer answers in milliseconds)."""
    size = mtu - ICMP_OVERHEAD
    ping = "ping -c 2 -A -W 2"
    return Probe(
        body=(f'if ! {ping} "$1" >/dev/null 2>&1; then echo "nopath $1"; '
              f'elif ! {ping} -M do -s {size} "$1" >/dev/null 2>&1; then echo "dfsmall $1"; '
              f'elif ping -c 1 -W 0.3 -M do -s {size + 1} "$1" >/dev/null 2>&1; '
              f'then echo "dfbig $1"; else echo "ok $1"; fi'),
        words={
            "ok": (True, "ok"),
            "nopath": (False, "no path: a plain ping gets no reply"),
            "dfsmall": (False, f"MTU: a plain ping answers, a {size}-byte ping with DF "
                               f"(FLANNEL_MTU {mtu} - {ICMP_OVERHEAD}) does not"),
            "dfbig": (False, f"MTU: a {size + 1}-byte ping with DF, 1 byte above "
                             f"FLANNEL_MTU {mtu}, got through"),
        },
        seconds=10.0,
    )


@dataclass(frozen=True)
class Concurrency:
    """How hard an all-pairs check drives the lab: sources at once, lanes (probes in flight)
    per source."""

    sources: int
    lanes: int

    @property
    def in_flight(self) -> int:
        return self.sources * self.lanes

    def __str__(self) -> str:
        return f"{self.sources} sources x {self.lanes} lanes"


def default_in_flight() -> int:
    value = os.environ.get("STACKCHECK_PING_CONCURRENCY", "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_IN_FLIGHT


def concurrency_for(hosts: int, in_flight: int | None = None) -> Concurrency:
    """Split at most ``in_flight`` probes over sources and lanes for a lab of ``hosts``.

    Lanes ~ sqrt(budget), so both a source's exec and the number of execs stay small; a
    3-host lab still probes everything at once.
    """
    budget = in_flight or default_in_flight()
    peers = max(1, hosts - 1)
    lanes = max(1, min(peers, math.isqrt(budget)))
    sources = max(1, min(hosts, budget // lanes))
    return Concurrency(sources, lanes)


REPROBE = Concurrency(REPROBE_SOURCES, REPROBE_LANES)


def script(peers: Sequence[str], lanes: int | None = None, probe: Probe = PING_PROBE) -> str:
    """A POSIX/busybox sh script probing ``peers`` in ``lanes`` parallel lanes (all at once
    without ``lanes``): one ``<word> <ip>`` line per peer."""
    lanes = max(1, min(lanes or len(peers), len(peers) or 1))
    parts = [f"probe() {{ {probe.body}; }}"]
    for lane in range(lanes):
        mine = " ".join(shlex.quote(ip) for ip in peers[lane::lanes])
        if mine:
            parts.append(f"( for ip in {mine}; do probe \"$ip\"; done ) &")
    parts.append("wait")
    return "\n".join(parts)


def script_timeout(peers: int, lanes: int, probe: Probe = PING_PROBE) -> float:
    """Seconds one source's script may take: its longest lane, every probe at worst, + 10."""
    return math.ceil(peers / max(1, lanes)) * probe.seconds + 10


def parse(output: str, peers: Sequence[str], probe: Probe = PING_PROBE) -> dict[str, Outcome]:
    """Outcome per peer IP from the script's output; a peer without a line did not answer."""
    seen: dict[str, Outcome] = {}
    for line in output.splitlines():
        word, _, ip = line.strip().partition(" ")
        if word in probe.words and ip in peers:
            passed, detail = probe.words[word]
            seen[ip] = Outcome(OK if passed else FAILED, detail)
    tail = output.strip()[-200:] or "(no output)"
    return {ip: seen.get(ip, Outcome(FAILED, f"no result from the source: {tail}"))
            for ip in peers}


def probe_from(source: Runner, peers: Mapping[str, str], lanes: int,
               probe: Probe = PING_PROBE) -> dict[str, Outcome]:
    """Probe every peer (label -> ip) from ``source`` in one exec; outcome per peer label."""
    ips = list(dict.fromkeys(peers.values()))
    if not ips:
        return {}
    try:
        output = source.run(script(ips, lanes, probe), script_timeout(len(ips), lanes, probe))
    except Exception as exc:  # noqa: BLE001 - an exec that fails is every pair's outcome
        output = f"exec in {source.label} failed: {exc}"
    by_ip = parse(output, ips, probe)
    return {label: by_ip[ip] for label, ip in peers.items()}


Pairs = dict[tuple[str, str], Outcome]


def _sweep(jobs: Mapping[str, tuple[Runner, dict[str, str]]], conc: Concurrency,
           probe_of: Callable[[Runner], Probe], deadline: float | None = None) -> Pairs:
    """Run every source's job, ``conc.sources`` at once; after ``deadline`` (monotonic),
    sources not yet started are not probed (their pairs have no outcome)."""
    def one(label: str) -> dict[str, Outcome]:
        if deadline is not None and time.monotonic() > deadline:
            return {}
        source, peers = jobs[label]
        return probe_from(source, peers, conc.lanes, probe_of(source))

    with ThreadPoolExecutor(max_workers=max(1, min(conc.sources, len(jobs)))) as pool:
        rows = dict(zip(jobs, pool.map(one, jobs), strict=True))
    return {(src, dst): outcome for src, row in rows.items() for dst, outcome in row.items()}


def probe_matrix(sources: Sequence[Runner], targets: Mapping[str, str],
                 conc: Concurrency | None = None,
                 probe: Probe | Callable[[Runner], Probe] = PING_PROBE,
                 reprobe: Concurrency = REPROBE,
                 reprobe_budget_s: float = REPROBE_BUDGET_S,
                 pairs: Collection[tuple[str, str]] | None = None) -> Pairs:
    """Outcome of every (source label, target label) pair with different labels (of
    ``pairs`` only, when given: a sample).

    First all pairs at ``conc`` (sized from the lab by default), then the failed ones once
    more at ``reprobe`` concurrency within ``reprobe_budget_s``.
    """
    probe_of = probe if callable(probe) else (lambda _source: probe)
    conc = conc or concurrency_for(len(sources))
    jobs = {s.label: (s, {t: ip for t, ip in targets.items()
                          if t != s.label and (pairs is None or (s.label, t) in pairs)})
            for s in sources}
    jobs = {label: job for label, job in jobs.items() if job[1]}
    results = _sweep(jobs, conc, probe_of)
    lost = {(a, b): o for (a, b), o in results.items() if not o.ok}
    if not lost:
        return results
    again = {s.label: (s, {b: targets[b] for (a, b) in lost if a == s.label})
             for s in sources if any(a == s.label for a, _ in lost)}
    second = _sweep(again, reprobe, probe_of, time.monotonic() + reprobe_budget_s)
    for pair, first in lost.items():
        retry = second.get(pair)
        if retry is None:
            results[pair] = Outcome(FAILED, f"{first.detail} (not re-probed: the re-probe's "
                                            f"{reprobe_budget_s:g} s were used up)")
        elif retry.ok:
            results[pair] = Outcome(RECOVERED, f"{first.detail} at first ({conc}), "
                                               f"answered on the re-probe ({reprobe})")
        else:
            again = "again" if retry.detail == first.detail else f"then {retry.detail}"
            results[pair] = Outcome(FAILED, f"{first.detail} ({again} on the re-probe at "
                                            f"{reprobe})")
    return results


def ping_matrix(pods: Sequence[Pingable], conc: Concurrency | None = None,
                reprobe: Concurrency = REPROBE,
                pairs: Collection[tuple[str, str]] | None = None) -> Pairs:
    """Every pod pings every other pod (by label; of ``pairs`` only, when given), bounded,
    lost pairs re-probed once."""
    return probe_matrix(pods, {p.label: p.ip for p in pods}, conc, PING_PROBE, reprobe,
                        pairs=pairs)


def failed_pairs(results: Pairs) -> list[str]:
    return [f"{a}->{b}" for (a, b), outcome in results.items() if not outcome.ok]


def by_reason(results: Pairs) -> str:
    """Failed pairs grouped by what was seen: ``<detail>: h1->h2, h2->h1; <detail>: ...``."""
    groups: dict[str, list[str]] = {}
    for (a, b), outcome in results.items():
        if not outcome.ok:
            groups.setdefault(outcome.detail, []).append(f"{a}->{b}")
    return "; ".join(f"{detail}: {', '.join(pairs)}" for detail, pairs in groups.items())


def recovered_pairs(results: Pairs) -> list[str]:
    return [f"{a}->{b}" for (a, b), outcome in results.items() if outcome.status == RECOVERED]


def matrix_json(kind: str, labels: Sequence[str], results: Pairs) -> dict:
    """The matrix as ``<run_dir>/evidence/pingmatrix.json`` holds it (docs: interfaces)."""
    return {"kind": kind, "hosts": list(labels),
            "pairs": {f"{a}->{b}": {"status": o.status, "detail": o.detail}
                      for (a, b), o in results.items()}}


COLOURS = {OK: "#cfc", RECOVERED: "#ffc", FAILED: "#f99"}


def matrix_html(labels: Sequence[str], results: Pairs) -> str:
    """A small HTML table: rows are sources, columns destinations; failures say why."""
    head = "".join(f"<th>{html.escape(n)}</th>" for n in labels)
    rows = []
    for src in labels:
        cells = []
        for dst in labels:
            outcome = results.get((src, dst))
            if outcome is None:
                cells.append("<td>-</td>")
                continue
            text = {OK: "ok", RECOVERED: "recovered"}.get(outcome.status, "FAIL")
            if outcome.status != OK:
                text += f": {html.escape(outcome.detail)}"
            cells.append(f"<td style='background:{COLOURS[outcome.status]}'>{text}</td>")
        rows.append(f"<tr><th>{html.escape(src)}</th>{''.join(cells)}</tr>")
    return f"<table border=1><tr><th>from \\ to</th>{head}</tr>{''.join(rows)}</table>"
