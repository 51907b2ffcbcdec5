"""Draw a :class:`Snapshot` as one self-contained SVG (no scripts, no external fonts).

Top to bottom: a title with the verdict; one card per host (roles, address, services, then
each layer's lines, in the layers' order: its etcd member, Kubernetes node, flannel lease and
device, ...), crossed out when the preflight found the host down; each layer's lines for the
whole cluster; the preflight per layer; the ping matrix as a heat map; the problems in words.
Red is a failed part, green a healthy one, grey a part not known, ink a plain fact.
"""

from __future__ import annotations

from html import escape

from stackcheck.picture.model import (
    BAD,
    BAD_STATES,
    OK,
    UNKNOWN,
    HostView,
    Line,
    PingMatrix,
    PreflightLayer,
    Snapshot,
)

RED, GREEN, AMBER, GREY, INK = "#d32f2f", "#2e7d32", "#ef8f00", "#9e9e9e", "#212121"
#: a line's colour by its state (info: a plain fact, in ink)
COLOR = {OK: GREEN, BAD: RED, UNKNOWN: GREY}
FILL = {"ok": "#66bb6a", "recovered": "#ffb74d", "failed": "#e53935", None: "#eeeeee"}
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
MARGIN, CARD_W, CARD_BASE, GAP, LINE = 20, 280, 74, 16, 18
PER_ROW, CELL = 4, 30
BANNER = 30  # the height of a down host's banner at the foot of its card
MATRIX_X = 480  # the ping matrix sits right of the preflight, this far from the margin


def _fit(text: str, width: float, size: float = 12, bold: bool = False) -> str:
    """``text`` cut with an ellipsis to about ``width`` pixels at font ``size``."""
    most = max(4, int(width / (size * (0.62 if bold else 0.54))))
    return text if len(text) <= most else text[: most - 1] + "…"


class _Canvas:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def text(self, x: float, y: float, text: str, *, size: float = 12, color: str = INK,
             bold: bool = False, anchor: str = "start", strike: bool = False,
             tip: str | None = None, css: str = "") -> None:
        attrs = [f'x="{x:.0f}"', f'y="{y:.0f}"', f'font-size="{size}"', f'fill="{color}"']
        if bold:
            attrs.append('font-weight="bold"')
        if anchor != "start":
            attrs.append(f'text-anchor="{anchor}"')
        if strike:
            attrs.append('text-decoration="line-through"')
        if css:
            attrs.append(f'class="{css}"')
        title = f"<title>{escape(tip)}</title>" if tip else ""
        self.parts.append(f"<text {' '.join(attrs)}>{title}{escape(text)}</text>")

    def rect(self, x: float, y: float, w: float, h: float, *, fill: str = "none",
             stroke: str = "none", width: float = 1, radius: float = 0, tip: str | None = None,
             css: str = "") -> None:
        title = f"<title>{escape(tip)}</title>" if tip else ""
        klass = f' class="{css}"' if css else ""
        self.parts.append(
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="{radius}" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="{width}"{klass}>{title}</rect>')

    def line(self, x1: float, y1: float, x2: float, y2: float, color: str, width: float) -> None:
        self.parts.append(f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" '
                          f'stroke="{color}" stroke-width="{width}" stroke-linecap="round"/>')

    def dot(self, x: float, y: float, color: str) -> None:
        self.parts.append(f'<circle cx="{x:.0f}" cy="{y:.0f}" r="5" fill="{color}"/>')


def _service_rows(host: HostView) -> list[list[tuple[str, str, float]]]:
    """The host's services as rows of (name, state, width) that fit a card."""
    rows: list[list[tuple[str, str, float]]] = [[]]
    used = 0.0
    for service, state in (host.services or {}).items():
        width = 16 + len(service) * 6.5
        if rows[-1] and used + width > CARD_W - 24:
            rows.append([])
            used = 0.0
        rows[-1].append((service, state, width))
        used += width
    return rows


def _host_lines(snap: Snapshot, host: HostView) -> list[Line]:
    """The lines the layers drew on ``host``'s card, in the layers' order."""
    return [line for part in snap.shown() for line in part.hosts.get(host.name, ())]


def _card_height(snap: Snapshot) -> float:
    """Every card is as tall as the fullest: its service rows and its layers' lines, and the
    banner of a host the preflight found down (below its lines, hiding none of them)."""
    down = any(snap.down_by_preflight(h.name) for h in snap.hosts)
    return CARD_BASE + (BANNER if down else 0) + max(
        (len(_service_rows(h)) + len(_host_lines(snap, h)) for h in snap.hosts),
        default=1) * LINE


def _card(c: _Canvas, snap: Snapshot, host: HostView, x: float, y: float,
          height: float) -> None:
    down = snap.down_by_preflight(host.name)
    bad = snap.host_failed(host.name)
    c.rect(x, y, CARD_W, height, fill="#fff5f5" if bad else "#ffffff",
           stroke=RED if bad else "#bdbdbd", width=3 if bad else 1, radius=8,
           css=f"host {'failed' if bad else 'healthy'}")
    inner = CARD_W - 24
    row = y + 24
    c.text(x + 12, row, _fit(host.name, inner - 100, 15, bold=True), size=15, bold=True)
    c.text(x + CARD_W - 12, row, host.address, size=12, color="#555555", anchor="end")
    row += LINE
    c.text(x + 12, row, _fit("roles: " + (", ".join(host.roles) or "none"), inner, 11),
           size=11, color="#555555")
    row += LINE + 2
    if host.services is None:
        c.text(x + 12, row, "services: not read", size=11, color=GREY)
    else:
        for index, services in enumerate(_service_rows(host)):
            if index:
                row += LINE
            cx = x + 17
            for service, state, width in services:
                off = state in BAD_STATES
                c.dot(cx, row - 4, RED if off else GREEN if state == "active" else GREY)
                c.text(cx + 8, row, service, size=11,
                       color=RED if off else INK if state == "active" else GREY,
                       tip=f"{host.name}: {service} {state}")
                cx += width
    row += 2
    for line in _host_lines(snap, host):
        row += LINE
        size = 11 if line.detail else 12
        c.text(x + 12, row, _fit(line.text, inner, size, bold=line.strong), size=size,
               color=COLOR.get(line.state, INK), bold=line.strong, tip=line.tip or None,
               css=f"line {line.state}")
    if down:
        c.line(x + 6, y + 6, x + CARD_W - 6, y + height - 6, RED, 4)
        c.line(x + CARD_W - 6, y + 6, x + 6, y + height - 6, RED, 4)
        c.rect(x + 20, y + height - BANNER - 8, CARD_W - 40, 24, fill=RED, radius=4)
        banner = _fit(f"DOWN ({', '.join(down)})", inner - 30, 13, bold=True)
        c.text(x + CARD_W / 2, y + height - BANNER + 9, banner, size=13, color="#ffffff",
               bold=True, anchor="middle", css="down")


def _preflight(c: _Canvas, layers: dict[str, PreflightLayer], x: float, y: float,
               width: float) -> float:
    c.text(x, y, "preflight", size=14, bold=True)
    y += LINE + 2
    column = max(110, 24 + 7.2 * max((len(name) for name in layers), default=0))
    for name, layer in layers.items():
        c.dot(x + 5, y - 4, GREEN if layer.ok else RED)
        c.text(x + 16, y, name, size=12, bold=True, color=INK if layer.ok else RED,
               strike=not layer.ok, css="layer-down" if not layer.ok else "")
        c.text(x + column, y, _fit(layer.summary, width - column), size=12,
               color=INK if layer.ok else RED, tip=layer.summary)
        y += LINE
    return y


def _cell(ping: PingMatrix) -> int:
    """Cell size: 30 px up to 16 hosts, smaller beyond (at least 10 px)."""
    return CELL if len(ping.hosts) <= 16 else max(10, 480 // len(ping.hosts))


def _label_w(ping: PingMatrix) -> float:
    return max(40, max((len(h) for h in ping.hosts), default=2) * 7 + 10)


def _matrix_width(ping: PingMatrix) -> float:
    return max(300, _label_w(ping) + len(ping.hosts) * _cell(ping))


def _matrix(c: _Canvas, ping: PingMatrix, x: float, y: float) -> float:
    c.text(x, y, f"ping matrix ({ping.kind}): row pings column", size=14, bold=True)
    y += 12
    label_w, cell = _label_w(ping), _cell(ping)
    top = y + label_w
    for j, target in enumerate(ping.hosts):
        cx = x + label_w + j * cell + cell / 2
        c.parts.append(f'<text x="{cx:.0f}" y="{top - 6:.0f}" font-size="11" fill="{INK}" '
                       f'transform="rotate(-60 {cx:.0f} {top - 6:.0f})">{escape(target)}</text>')
    for i, source in enumerate(ping.hosts):
        cy = top + i * cell
        c.text(x + label_w - 6, cy + cell / 2 + 4, source, size=11, anchor="end")
        for j, target in enumerate(ping.hosts):
            cx = x + label_w + j * cell
            if source == target:
                c.rect(cx, cy, cell - 2, cell - 2, fill="#f5f5f5", stroke="#e0e0e0")
                continue
            found = ping.pairs.get((source, target))
            status = found[0] if found else None
            tip = f"{source}->{target}: {status or 'not measured'}"
            if found and found[1]:
                tip += f" ({found[1]})"
            c.rect(cx, cy, cell - 2, cell - 2, fill=FILL[status], radius=3, tip=tip,
                   css=f"pair {status or 'unknown'}")
            if status == "failed" and cell >= 20:
                c.text(cx + cell / 2 - 1, cy + cell / 2 + 4, "✗", size=13, color="#ffffff",
                       bold=True, anchor="middle")
    y = top + len(ping.hosts) * cell + 16
    lx = x
    for status in ("ok", "recovered", "failed"):
        c.rect(lx, y - 10, 12, 12, fill=FILL[status], radius=2)
        c.text(lx + 16, y, status, size=11)
        lx += 90
    return y + LINE


def render(snap: Snapshot) -> str:
    """The SVG document of ``snap``."""
    c = _Canvas()
    per_row = max(1, min(PER_ROW, len(snap.hosts)))
    width = max(760, 2 * MARGIN + per_row * CARD_W + (per_row - 1) * GAP)
    matrix_x = MARGIN + MATRIX_X
    if snap.ping is not None and snap.ping.hosts:
        width = max(width, matrix_x + _matrix_width(snap.ping) + MARGIN)
    problems = snap.problems()
    title = f"lab {snap.lab} ({snap.provisioner}) — {len(snap.hosts)} hosts"
    c.text(MARGIN, 30, _fit(title, width - 300, 20, bold=True), size=20, bold=True)
    sub = " · ".join(x for x in (f"run {snap.run_id}" if snap.run_id else "",
                                 f"drawn {snap.taken}" if snap.taken else "") if x)
    c.text(MARGIN, 50, sub, size=12, color="#555555")
    verdict = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}" if problems \
        else "every part drawn is healthy"
    c.rect(width - MARGIN - 240, 14, 240, 30, fill=RED if problems else GREEN, radius=6)
    c.text(width - MARGIN - 120, 34, verdict, size=14, bold=True, color="#ffffff",
           anchor="middle", css="verdict")
    y = 70
    card_h = _card_height(snap)
    for index, host in enumerate(snap.hosts):
        col, row = index % per_row, index // per_row
        _card(c, snap, host, MARGIN + col * (CARD_W + GAP), y + row * (card_h + GAP), card_h)
    rows = (len(snap.hosts) + per_row - 1) // per_row
    y += rows * (card_h + GAP) + 10
    for line in (line for part in snap.shown() for line in part.cluster):
        color = COLOR.get(line.state, INK)
        c.dot(MARGIN + 5, y - 4, color)
        c.text(MARGIN + 16, y, _fit(line.text, width - 2 * MARGIN - 16, 13, bold=line.strong),
               size=13, color=color, bold=line.strong, tip=line.tip or None,
               css=f"cluster {line.state}")
        y += LINE + 2
    y += 10
    left_end = y
    if snap.preflight:
        left_end = _preflight(c, snap.preflight, MARGIN, y, MATRIX_X - 20) + 10
    else:
        c.text(MARGIN, y, "preflight: no verdict in this run", size=12, color=GREY)
        left_end = y + LINE
    if snap.ping is not None and snap.ping.hosts:
        right_end = _matrix(c, snap.ping, matrix_x, y)
    else:
        c.text(MARGIN + MATRIX_X, y, "ping matrix: not measured in this run", size=12,
               color=GREY)
        right_end = y + LINE
    y = max(left_end, right_end) + 10
    if problems:
        c.text(MARGIN, y, "what failed", size=14, bold=True, color=RED)
        y += LINE + 2
        for line in problems:
            c.text(MARGIN + 8, y, _fit(f"• {line}", width - 2 * MARGIN), size=12, color=RED,
                   tip=line, css="problem")
            y += LINE
    for note in snap.notes:
        c.text(MARGIN, y, _fit(f"note: {note}", width - 2 * MARGIN, 11), size=11, color=GREY)
        y += LINE - 2
    height = y + MARGIN
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" id="stackcheck-lab-picture" '
            f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'font-family="{FONT}" role="img" aria-label="{escape(title)}">')
    desc = f"<title>{escape(title)}: {escape(verdict)}</title>"
    background = '<rect width="100%" height="100%" fill="#fafafa"/>'
    return "\n".join([head, desc, background, *c.parts, "</svg>"]) + "\n"
