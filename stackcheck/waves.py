"""Rolling waves: per-host disruptive work on several hosts at once, quorum kept throughout.

:func:`plan` groups hosts so that no wave takes more of a layer down than it can lose: at
most ``tolerance`` etcd members, all but one Kubernetes node (one stays schedulable), all but
one control-plane host, and at most ``max_disrupted`` hosts. Hosts are spread evenly, so the
waves are as few and as small as the limits allow. :func:`run` runs one wave, a thread per
host; on Ctrl-C it starts nothing more, lets the hosts already changing finish (each restores
itself in its own ``finally``) and then re-raises.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stackcheck.lab import Host, Lab

#: s: after Ctrl-C, how long the hosts already changing get to finish and restore
INTERRUPT_GRACE = 600.0


def limits(lab: Lab) -> dict[str, int]:
    """Per role, how many of its hosts one wave may disrupt."""
    out = {"etcd": max(1, lab.failure_tolerance)}
    for role in ("node", "master"):
        count = len(lab.hosts_with(role))
        out[role] = max(1, count - 1)
    return out


def keeps_quorum(lab: Lab, wave: Sequence[Host]) -> list[str]:
    """Why ``wave`` may not be disrupted at once (empty: it may)."""
    problems = []
    for role, limit in limits(lab).items():
        down = [h.name for h in wave if h.has_role(role)]
        if len(down) > limit:
            problems.append(f"{len(down)} {role} hosts ({', '.join(down)}) > {limit}")
    return problems


def plan(lab: Lab, hosts: Sequence[Host], max_disrupted: int | None = None) -> list[list[Host]]:
    """Waves covering ``hosts`` once each, every wave within :func:`limits` and the cap."""
    if not hosts:
        return []
    cap = max(1, max_disrupted or len(hosts))
    rules = limits(lab)
    need = math.ceil(len(hosts) / cap)
    for role, limit in rules.items():
        need = max(need, math.ceil(sum(h.has_role(role) for h in hosts) / limit))
    waves: list[list[Host]] = [[] for _ in range(need)]

    def fits(wave: list[Host], host: Host) -> bool:
        return len(wave) < cap and not keeps_quorum(lab, [*wave, host])

    # the most constrained hosts first, each into the smallest wave it fits
    ranked = sorted(hosts, key=lambda h: -sum(h.has_role(r) for r in rules))
    for host in ranked:
        options = [w for w in waves if fits(w, host)]
        if not options:
            waves.append([])
            options = [waves[-1]]
        min(options, key=len).append(host)
    position = {h.name: i for i, h in enumerate(lab.hosts)}
    return [sorted(w, key=lambda h: position.get(h.name, 0)) for w in waves if w]


@dataclass
class Outcome:
    """What one host's work did: nothing raised, or the exception it raised."""

    error: BaseException | None = None
    events: list | None = None  # evidence captured by the work, if any


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(hosts: Sequence[Host], work: Callable[[Host, threading.Event], Outcome],
        grace: float = INTERRUPT_GRACE,
        say: Callable[[str], None] = _say) -> dict[str, Outcome]:
    """``work(host, interrupted)`` for every host at once; an outcome per host name.

    ``work`` must not raise (it returns its exception in the outcome) and should stop
    waiting to start once ``interrupted`` is set. Ctrl-C (KeyboardInterrupt) while the wave
    runs sets it, says so (``say``), waits up to ``grace`` s for the work already started,
    then re-raises.
    """
    interrupted = threading.Event()
    done = threading.Condition()
    running: set[str] = set()
    out: dict[str, Outcome] = {}

    def one(host: Host) -> None:
        with done:
            if interrupted.is_set():
                return  # Ctrl-C came before this host started: nothing to restore
            running.add(host.name)
        try:
            out[host.name] = work(host, interrupted)
        except BaseException as exc:  # noqa: BLE001 - reported as the host's outcome
            out[host.name] = Outcome(error=exc)
        finally:
            with done:
                running.discard(host.name)
                done.notify_all()

    threads = [threading.Thread(target=one, args=(h,), name=f"wave-{h.name}", daemon=True)
               for h in hosts]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        with done:
            interrupted.set()
            busy = sorted(running)
        say(f"stackcheck: interrupted during a wave; waiting up to {grace:g}s for "
            f"{', '.join(busy) or 'nothing'} to finish and restore")
        with done:
            done.wait_for(lambda: not running, timeout=grace)
        raise
    return out
