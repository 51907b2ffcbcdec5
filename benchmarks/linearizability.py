"""How long the linearizability checker takes for histories like a run's, 1k and 10k ops.

No lab needed: histories are simulated the way the etcd scenarios record them (6 clients
over 3 keys, writes of unique values, reads and compare-and-set, every operation taking
effect at an instant between its call and return, a share of writes timing out with an
unknown outcome, some of which took effect and were read). Each size is checked
``--repeat`` times, interleaved; the median and spread are printed.

    .venv/bin/python benchmarks/linearizability.py --sizes 1000 10000 --repeat 5
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stackcheck.etcd.linearizability import History, Op, check_history


def simulated(n: int, clients: int = 6, keys: int = 3, unknown: float = 0.03,
              seed: int = 1) -> History:
    """A linearizable history of ``n`` operations with overlapping clients."""
    rng = random.Random(seed)
    values: dict[str, str | None] = {f"k{i}": None for i in range(keys)}
    free = [0.0] * clients  # when each client may call its next operation
    planned = []  # (effect time, client, call, ret, kind, key, new value, expect, unknown)
    for i in range(n):
        c = min(range(clients), key=lambda j: free[j])
        call = free[c] + rng.random() * 0.002
        effect = call + rng.random() * 0.01
        ret = effect + rng.random() * 0.01
        free[c] = ret
        roll = rng.random()
        kind = "write" if roll < 0.35 else "read" if roll < 0.75 else "cas"
        planned.append((effect, c, call, ret, kind, f"k{rng.randrange(keys)}", f"c{c}-{i}",
                        rng.random() < unknown))
    ops = []
    for _effect, c, call, ret, kind, key, new, lost in sorted(planned):
        client = f"c{c}@h{c % 3 + 1}"
        if kind == "read":
            ops.append(Op("read", values[key], call, ret, "ok", client, key))
        elif kind == "write" or values[key] is None:
            applied = not lost or rng.random() < 0.5
            if applied:
                values[key] = new
            ops.append(Op("write", new, call, math.inf if lost else ret,
                          "unknown" if lost else "ok", client, key))
        else:
            expect = values[key] if rng.random() < 0.7 else "never"
            if expect == values[key]:
                values[key] = new
                ops.append(Op("cas", new, call, ret, "ok", client, key, expect=expect,
                              swapped=True))
            else:
                ops.append(Op("cas", new, call, ret, "ok", client, key, expect=expect,
                              swapped=False, seen=values[key]))
    ops.sort(key=lambda op: op.call)
    return History(ops=ops)


def stale(h: History) -> History:
    """``h`` with its last read of a written value turned stale (the value before)."""
    ops = [Op(**vars(op)) for op in h.ops]
    for i in range(len(ops) - 1, -1, -1):
        op = ops[i]
        older = [o.value for o in ops[:i] if o.key == op.key and o.kind == "write"
                 and o.outcome == "ok" and o.value != op.value and o.ret < op.call - 0.05]
        if op.kind == "read" and op.value is not None and older:
            op.value = older[-1]
            break
    return History(ops=ops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--unknown", type=float, default=0.03,
                        help="share of writes that time out (majority loss: ~0.3)")
    args = parser.parse_args()
    cases = {}
    for n in args.sizes:
        cases[(n, "linearizable")] = (simulated(n, unknown=args.unknown), True)
        cases[(n, "one stale read")] = (stale(cases[(n, "linearizable")][0]), False)
    times: dict[tuple, list[float]] = {c: [] for c in cases}
    steps: dict[tuple, int] = {}
    names = list(cases)
    for r in range(args.repeat):
        for case in names[r % len(names):] + names[:r % len(names)]:
            history, expected = cases[case]
            started = time.perf_counter()
            verdict = check_history(history)
            times[case].append(time.perf_counter() - started)
            assert verdict.ok is expected, verdict.explanation
            steps[case] = verdict.steps
    print(f"unknown writes: {args.unknown:.0%}; {args.repeat} rounds")
    print(f"{'ops':>7} {'history':>15} {'median s':>9} {'min..max s':>15} {'steps':>8} "
          f"{'µs/op':>7}")
    for (n, kind), spent in times.items():
        med = statistics.median(spent)
        print(f"{n:>7} {kind:>15} {med:>9.3f} {min(spent):>7.3f}..{max(spent):<7.3f} "
              f"{steps[(n, kind)]:>8} {med / n * 1e6:>7.0f}")


if __name__ == "__main__":
    main()
