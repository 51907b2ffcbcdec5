"""Rolling waves: per-host disruptive work on several hosts at once, quorum kept throughout.

:func:`plan` groups hosts so that no wave takes more of a layer down than it can lose: at
most ``tolerance`` etcd members, all but one Kubernetes node (one stays schedulable), all but
one control-plane host, and at most ``max_disrupted`` hosts. Hosts are spread evenly, so the
waves are as few and as small as the limits allow. :func:`run` rolls through the hosts, a
thread per host: a host starts as soon as it fits beside the hosts still changing
(:func:`window`: no more at once than the plan's largest wave, quorum kept), so no wave waits
for its slowest host; on Ctrl-C it starts nothing more, lets the hosts already changing
finish (each restores itself in its own ``finally``) and then re-raises.
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


def window(lab: Lab, planned: Sequence[Sequence[Host]]) -> Callable[[Sequence[Host], Host], bool]:
    """``fits(changing, host)`` for :func:`run`: may ``host`` start beside the hosts still
    changing? As many at once as the plan's largest wave, every layer's quorum kept."""
    size = max((len(w) for w in planned), default=1)
    return lambda changing, host: (len(changing) < size
                                   and not keeps_quorum(lab, [*changing, host]))


def run(hosts: Sequence[Host], work: Callable[[Host, threading.Event], Outcome],
        grace: float = INTERRUPT_GRACE, say: Callable[[str], None] = _say,
        fits: Callable[[Sequence[Host], Host], bool] | None = None) -> dict[str, Outcome]:
    """``work(host, interrupted)`` for every host; an outcome per host name.

    ``fits`` None: every host at once. Else rolling: a host starts as soon as ``fits(the
    hosts still changing, host)`` (:func:`window`), the first of ``hosts`` in order that
    fits; so a slow host holds back no more than its own place (no wave waits for its
    slowest host), and a host another check holds (claims) delays only itself.

    ``work`` must not raise (it returns its exception in the outcome) and should stop
    waiting to start once ``interrupted`` is set. Ctrl-C (KeyboardInterrupt) sets it, starts
    nothing more, says so (``say``), waits up to ``grace`` s for the work already started,
    then re-raises.
    """
    interrupted = threading.Event()
    changed = threading.Condition()
    pending = list(hosts)
    changing: list[Host] = []
    out: dict[str, Outcome] = {}

    def one(host: Host) -> None:
        try:
            out[host.name] = work(host, interrupted)
        except BaseException as exc:  # noqa: BLE001 - reported as the host's outcome
            out[host.name] = Outcome(error=exc)
        finally:
            with changed:
                changing.remove(host)
                changed.notify_all()

    def startable() -> Host | None:
        if not changing:
            return pending[0]  # alone, any host fits (each layer may lose one)
        return next((h for h in pending if fits is None or fits(changing, h)), None)

    try:
        with changed:
            while pending or changing:
                host = startable() if pending else None
                if host is None:
                    changed.wait(0.2)  # short waits: Ctrl-C reaches the main thread
                    continue
                pending.remove(host)
                changing.append(host)
                threading.Thread(target=one, args=(host,), name=f"wave-{host.name}",
                                 daemon=True).start()
    except KeyboardInterrupt:
        with changed:
            interrupted.set()
            busy = sorted(h.name for h in changing)
        say(f"stackcheck: interrupted during a wave; waiting up to {grace:g}s for "
            f"{', '.join(busy) or 'nothing'} to finish and restore")
        with changed:
            changed.wait_for(lambda: not changing, timeout=grace)
        raise
    return out
