"""A scenario's traffic as an SVG timeline: one lane per client, the leader over time.

Operations are bars from call to return, coloured by outcome; fault windows are shaded;
a violation's operation is outlined. Plain SVG text, no network, no dependencies.
"""

from __future__ import annotations

import math
from html import escape

from stackcheck.etcd.linearizability import Op
from stackcheck.etcd.workload import Record

COLOURS = {"ok": "#2e7d32", "fail": "#9e9e9e", "unknown": "#ef6c00", "pending": "#bdbdbd"}
LEADER_COLOURS = ["#5c6bc0", "#26a69a", "#ab47bc", "#8d6e63", "#42a5f5", "#d4e157"]
LABEL_W, PLOT_W, LANE_H, GAP, TOP = 110, 1000, 14, 4, 34


def _ticks(duration: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300):
        if duration / step <= 12:
            return step
    return 600.0


def leader_segments(record: Record) -> list[tuple[float, float, str]]:
    """(start, end, label) in seconds since the start: the leader the answering members
    agree on, ``no leader``, ``split: h1|h2``, or ``no answer``."""
    t0 = record.started
    end = (record.stopped or (record.leaders[-1][0] if record.leaders else t0)) - t0
    out: list[tuple[float, float, str]] = []
    for t, named in record.leaders:
        answers = {v for v in named.values() if v is not None}
        if not answers:
            label = "no answer"
        elif answers == {"none"}:
            label = "no leader"
        elif len(answers) == 1:
            label = f"leader {next(iter(answers))}"
        else:
            label = "split: " + "|".join(sorted(answers))
        if out and out[-1][2] == label:
            continue
        if out:
            out[-1] = (out[-1][0], t - t0, out[-1][2])
        out.append((t - t0, end, label))
    return out


def _same(op: Op, culprit: Op | None, t0: float) -> bool:
    """``culprit`` (times relative to ``t0``, as the checker saw it) is ``op``."""
    return culprit is not None and (op.client, op.kind, op.key, op.value) == (
        culprit.client, culprit.kind, culprit.key, culprit.value) and abs(
        op.call - t0 - culprit.call) < 1e-3


def svg(record: Record, title: str = "", culprit: Op | None = None) -> str:
    """The timeline picture of ``record`` as an SVG document."""
    t0 = record.started
    end = record.stopped or max([t0 + 1, *(o.call for o in record.history.ops)])
    duration = max(end - t0, 0.001)
    scale = PLOT_W / duration
    lanes = {c: i for i, c in enumerate(record.clients)}
    height = TOP + (len(lanes) + 1) * (LANE_H + GAP) + 30

    def x(t: float) -> float:
        return LABEL_W + max(0.0, min(duration, t - t0)) * scale

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{LABEL_W + PLOT_W + 20}" '
        f'height="{height}" font-family="sans-serif" font-size="11">',
        f'<text x="4" y="14" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<text x="{LABEL_W}" y="28" fill="#555">ok: green · failed: grey · unknown '
        f'(timed out): orange · fault window: shaded · outlined: fits no order</text>',
    ]
    lane_top = TOP + LANE_H + GAP
    bottom = TOP + (len(lanes) + 1) * (LANE_H + GAP)
    for w in record.windows:  # fault windows behind everything
        x0, x1 = x(w.start), x(w.end if w.end is not None else end)
        parts.append(f'<rect x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 1):.1f}" '
                     f'height="{bottom - TOP}" fill="#e53935" fill-opacity="0.12">'
                     f'<title>{escape(w.label)}</title></rect>')
        parts.append(f'<text x="{x0 + 2:.1f}" y="{bottom + 24}" fill="#c62828">'
                     f'{escape(w.label)}</text>')
    parts.append(f'<text x="4" y="{TOP + LANE_H - 3}">leader</text>')
    names: dict[str, str] = {}
    for s0, s1, label in leader_segments(record):
        if label.startswith("leader "):
            colour = names.setdefault(label, LEADER_COLOURS[len(names) % len(LEADER_COLOURS)])
        else:
            colour = "#e53935" if label.startswith("split") else "#bdbdbd"
        x0, x1 = x(t0 + s0), x(t0 + s1)
        parts.append(f'<rect x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 1):.1f}" '
                     f'height="{LANE_H}" fill="{colour}"><title>{escape(label)} '
                     f'({s0:.2f}-{s1:.2f}s)</title></rect>')
        if x1 - x0 > 50:
            parts.append(f'<text x="{x0 + 3:.1f}" y="{TOP + LANE_H - 3}" fill="#fff">'
                         f'{escape(label)}</text>')
    for client, i in lanes.items():
        y = lane_top + i * (LANE_H + GAP)
        parts.append(f'<text x="4" y="{y + LANE_H - 3}">{escape(client)}</text>')
    for op in record.history.ops:
        if op.client not in lanes:
            continue
        y = lane_top + lanes[op.client] * (LANE_H + GAP)
        stop = op.ret if not math.isinf(op.ret) else (op.ended or end)
        x0, x1 = x(op.call), x(stop)
        outline = ' stroke="#d50000" stroke-width="2"' if _same(op, culprit, t0) else ""
        tip = op.describe() + (f" — {op.error}" if op.error else "")
        parts.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" '
                     f'height="{LANE_H}" fill="{COLOURS.get(op.outcome, "#000")}"{outline}>'
                     f'<title>{escape(tip)}</title></rect>')
    step = _ticks(duration)
    for k in range(int(duration / step) + 1):
        tx = LABEL_W + k * step * scale
        parts.append(f'<line x1="{tx:.1f}" y1="{TOP}" x2="{tx:.1f}" y2="{bottom}" '
                     f'stroke="#000" stroke-opacity="0.08"/>')
        parts.append(f'<text x="{tx:.1f}" y="{bottom + 12}" text-anchor="middle">'
                     f'{k * step:g}s</text>')
    parts.append("</svg>")
    return "\n".join(parts)
