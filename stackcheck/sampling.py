"""Sampling at scale (docs/scale.md): which pairs the all-pairs checks probe, which hosts the
per-host disruptive checks change, and why.

Pairs: every host a source and a destination ``k`` times (offsets 1 and ``k - 1`` others drawn
from the run id: pairs ``(h[i], h[(i + o) % n])``), plus one pair for every ordered pair of
racks (a host's ``rack``, else its underlay /24), same rack included. Hosts: one per role
and rack, plus a rotating set drawn from the run id.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Sequence

from stackcheck.lab import Host, Lab

#: above this many hosts the all-pairs checks probe a sample unless the full matrix is asked for
SAMPLE_ABOVE = 24
#: each host is a source and a destination this many times in the sample
K = 8
#: hosts drawn from the run id on top of one per role and rack
ROTATING = 2


def rack_of(host: Host) -> str:
    """The host's rack: its inventory ``rack``, else its underlay /24."""
    rack = getattr(host, "rack", None)
    if rack:
        return str(rack)
    try:
        return str(ipaddress.ip_network(f"{host.address}/24", strict=False))
    except ValueError:
        return "?"


def offsets(n: int, k: int, seed: str) -> list[int]:
    """``k`` distinct offsets in 1..n-1: 1, then drawn from ``seed``."""
    if n < 2:
        return []
    rest = list(range(2, n))
    random.Random(seed).shuffle(rest)
    return [1, *rest[: max(0, k - 1)]]


def sample_pairs(labels: Sequence[str], racks: dict[str, str], seed: str,
                 k: int = K) -> dict[tuple[str, str], str]:
    """The sampled ordered pairs, each with why it is in the sample."""
    n = len(labels)
    pairs: dict[tuple[str, str], str] = {}
    for o in offsets(n, k, seed):
        for i, a in enumerate(labels):
            pairs.setdefault((a, labels[(i + o) % n]), f"offset {o}")
    by_rack: dict[str, list[str]] = {}
    for label in labels:
        by_rack.setdefault(racks.get(label, "?"), []).append(label)
    pick = random.Random(seed + "/racks")
    for ra, sources in sorted(by_rack.items()):
        for rb, targets in sorted(by_rack.items()):
            options = [(a, b) for a in sources for b in targets if a != b]
            if options and not any(racks.get(a) == ra and racks.get(b) == rb for a, b in pairs):
                pairs[pick.choice(options)] = f"rack pair {ra} -> {rb}"
    return pairs


def matrix_plan(lab: Lab, labels: Sequence[str], seed: str, full: bool
                ) -> tuple[dict[tuple[str, str], str] | None, str]:
    """(sampled pairs with reasons, or None for every pair; why), for ``labels`` (host names)."""
    n = len(labels)
    if full:
        return None, f"every pair of {n} hosts: --full-matrix"
    if n <= SAMPLE_ABOVE:
        return None, f"every pair: {n} hosts <= {SAMPLE_ABOVE} (sampling starts above)"
    racks = {}
    for label in labels:
        try:
            racks[label] = rack_of(lab.host(label))
        except KeyError:
            racks[label] = "?"
    pairs = sample_pairs(labels, racks, seed)
    return pairs, (f"a sample of {len(pairs)} of {n * (n - 1)} pairs ({n} hosts > "
                   f"{SAMPLE_ABOVE}): every host a source and a destination {K} times "
                   f"(offsets from the run id) and every rack pair once; --full-matrix for all")


def disruptive_sample(lab: Lab, hosts: Sequence[Host], seed: str,
                      rotating: int = ROTATING) -> dict[str, str]:
    """The hosts a per-host disruptive check runs on, each with why."""
    chosen: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    for host in hosts:
        for role in host.roles or ["(none)"]:
            key = (role, rack_of(host))
            if key not in seen:
                seen.add(key)
                chosen.setdefault(host.name, f"first {role} host in rack {key[1]}")
    rest = [h.name for h in hosts if h.name not in chosen]
    for name in random.Random(seed).sample(rest, min(rotating, len(rest))):
        chosen[name] = "rotating pick for this run id"
    return chosen
