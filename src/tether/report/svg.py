"""Inline SVG charts for static pages: line charts, bars with intervals, reliability diagrams.

Every coordinate is computed here, by small pure functions, so a page needs no script and no
plotting library, and the geometry is tested against hand-computed values. Each chart comes back
as `markupsafe.Markup` (what Jinja2's autoescape produces) with every label escaped on the way in:
labels are dimension, stratum and series names, which come from user-written specs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#4a5568", "#b7791f", "#319795")
MAX_POINTS = 300
"""Most points a line keeps: about one per two pixels of a 600-pixel plot."""
CHART_CSS = Markup(
    "svg text{font-size:12px;fill:#2d3748}svg .tick{fill:#718096;font-size:11px}svg .ref{fill:#c53030}\n"
    "svg .frame{fill:none;stroke:#a0aec0}svg .grid{stroke:#edf2f7}svg .axis{stroke:#4a5568}\n"
    "svg .bar{fill:#90cdf4}svg .whisker{stroke:#1a202c;stroke-width:2}"
    "svg .marker{stroke:#c53030;stroke-width:2}\n"
    "svg .diagonal{stroke:#a0aec0;stroke-dasharray:4 3}svg .point{fill:#2b6cb0;fill-opacity:.75}\n"
)
"""The classes these charts draw with, for a page's one <style> element (the pages' CSP allows
inline styles and nothing else)."""

Point = tuple[float, float]


@dataclass(frozen=True)
class Line:
    """One series of a line chart: (step, value) points in step order."""

    label: str
    points: Sequence[Point]


@dataclass(frozen=True)
class Reference:
    """A horizontal line across a line chart, such as the KL budget."""

    value: float
    label: str


@dataclass(frozen=True)
class Bar:
    """One row of a bar chart: a value, its interval (a whisker) and an optional marker (a tick)."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    marker: float | None = None
    text: str = ""


@dataclass(frozen=True)
class Bin:
    """One reliability bin: mean predicted probability, observed frequency, pairs in the bin."""

    predicted: float
    observed: float
    n: int


# --- geometry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """Linear map of the domain [d0, d1] onto pixels [r0, r1] (r1 < r0 flips an axis)."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, value: float) -> float:
        if self.d1 == self.d0:
            return (self.r0 + self.r1) / 2
        return self.r0 + (value - self.d0) * (self.r1 - self.r0) / (self.d1 - self.d0)


def nice_step(span: float, target: int = 5) -> float:
    """The 1, 2 or 5 × 10^k tick step that splits `span` into about `target` intervals."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(target, 1)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power * (1 + 1e-9):
            return factor * power
    return 10 * power


def nice_ticks(low: float, high: float, target: int = 5) -> tuple[float, ...]:
    """Evenly spaced round ticks from at or below `low` to at or above `high`."""
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    step = nice_step(high - low, target)
    first = math.floor(low / step + 1e-9) * step
    count = math.ceil((high - first) / step - 1e-9)
    # Rounding at the step's decimals keeps 0.30000000000000004 out of the labels.
    digits = max(0, -math.floor(math.log10(step))) + 1
    return tuple(round(first + i * step, digits) for i in range(count + 1))


def tick_label(value: float, step: float) -> str:
    """A tick's text with the decimals its (1, 2 or 5 × 10^k) step needs: 0.2 → 1, 200 → 0."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    return f"{value:.{decimals}f}"


def downsample(points: Sequence[Point], max_points: int = MAX_POINTS) -> list[Point]:
    """At most about `max_points` points that keep the series' shape and its extremes.

    The steps are cut into max_points // 2 equal buckets and each bucket keeps its lowest and
    highest point, in step order: a single-step KL spike survives, where a bucket mean would
    flatten exactly what a reader is looking for. First and last points are always kept.
    """
    if len(points) <= max_points:
        return list(points)
    buckets = max(max_points // 2 - 1, 1)
    inner = points[1:-1]
    size = len(inner) / buckets
    kept: list[Point] = [points[0]]
    for b in range(buckets):
        chunk = inner[int(b * size) : int((b + 1) * size)]
        if not chunk:
            continue
        lowest = min(chunk, key=lambda p: p[1])
        highest = max(chunk, key=lambda p: p[1])
        kept.extend(sorted({lowest, highest}, key=lambda p: p[0]))
    kept.append(points[-1])
    return kept


def finite(points: Sequence[Point]) -> list[Point]:
    """Points whose step and value are both finite numbers (NaN cannot be drawn)."""
    return [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]


def polyline(points: Sequence[Point], x: Scale, y: Scale) -> str:
    """The `points` attribute of an SVG polyline, to one decimal of a pixel."""
    return " ".join(f"{x(px):.1f},{y(py):.1f}" for px, py in points)


# --- charts -----------------------------------------------------------------------------------

CHART_W, CHART_H = 540, 210
LEFT, RIGHT, TOP, BOTTOM = 56, 14, 28, 30


def _svg(width: float, height: float, label: str, body: list[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")


def _text(x: float, y: float, text: str, *, anchor: str = "start", cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{klass}>{escape(text)}</text>'


def line_chart(
    lines: Sequence[Line],
    *,
    title: str,
    reference: Reference | None = None,
    width: int = CHART_W,
    height: int = CHART_H,
    max_points: int = MAX_POINTS,
) -> Markup:
    """Series against step on shared axes, a legend on top and an optional dashed reference line."""
    drawn = [Line(line.label, downsample(finite(line.points), max_points)) for line in lines]
    xs = [p[0] for line in drawn for p in line.points]
    ys = [p[1] for line in drawn for p in line.points] + ([reference.value] if reference else [])
    if not xs:
        return _svg(width, 40, title, [_text(4, 24, f"{title}: no data logged", cls="muted")])
    x_ticks, y_ticks = nice_ticks(min(xs), max(xs), 6), nice_ticks(min(ys), max(ys), 4)
    x = Scale(x_ticks[0], x_ticks[-1], LEFT, width - RIGHT)
    y = Scale(y_ticks[0], y_ticks[-1], height - BOTTOM, TOP)
    body = _axes(x, y, x_ticks, y_ticks)
    if reference is not None:
        ry = y(reference.value)
        body.append(
            f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{ry:.1f}" y2="{ry:.1f}" '
            f'stroke="#c53030" stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
        body.append(_text(width - RIGHT - 2, ry - 4, reference.label, anchor="end", cls="ref"))
    for i, line in enumerate(drawn):
        colour = PALETTE[i % len(PALETTE)]
        if len(line.points) == 1:
            ((px, py),) = line.points
            body.append(f'<circle cx="{x(px):.1f}" cy="{y(py):.1f}" r="3" fill="{colour}"/>')
        elif line.points:
            body.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" '
                f'points="{polyline(line.points, x, y)}"/>'
            )
    body.extend(_legend(drawn, LEFT))
    return _svg(width, height, title, body)


def _axes(x: Scale, y: Scale, x_ticks: Sequence[float], y_ticks: Sequence[float]) -> list[str]:
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    bottom, top = y.r0, y.r1
    out = [f'<rect x="{x.r0}" y="{top}" width="{x.r1 - x.r0:g}" height="{bottom - top:g}" class="frame"/>']
    for t in y_ticks:
        ty = y(t)
        out.append(f'<line x1="{x.r0}" x2="{x.r1}" y1="{ty:.1f}" y2="{ty:.1f}" class="grid"/>')
        out.append(_text(x.r0 - 5, ty + 4, tick_label(t, y_step), anchor="end", cls="tick"))
    for t in x_ticks:
        out.append(_text(x(t), bottom + 16, tick_label(t, x_step), anchor="middle", cls="tick"))
    out.append(_text(x.r1, bottom + 28, "step", anchor="end", cls="tick"))
    return out


def _legend(lines: Sequence[Line], left: float) -> list[str]:
    out, at = [], left
    for i, line in enumerate(lines):
        colour = PALETTE[i % len(PALETTE)]
        label = line.label if line.points else f"{line.label} (no data)"
        out.append(f'<rect x="{at:.1f}" y="8" width="12" height="4" fill="{colour}"/>')
        out.append(_text(at + 16, 14, label))
        at += 28 + 7 * len(label)
    return out


BAR_LABEL_W, BAR_PLOT_W, BAR_TEXT_W, BAR_ROW = 170, 300, 150, 24


def bar_domain(bars: Sequence[Bar]) -> tuple[float, float]:
    """A round domain holding zero, every value and every interval end."""
    values = [0.0] + [v for b in bars for v in (b.value, b.low, b.high, b.marker) if v is not None]
    ticks = nice_ticks(min(values), max(values), 4)
    return ticks[0], ticks[-1]


def interval_bars(bars: Sequence[Bar], *, title: str, domain: tuple[float, float] | None = None) -> Markup:
    """Horizontal bars from zero, a black whisker for the interval and a red tick for the marker."""
    lo, hi = domain or bar_domain(bars)
    x = Scale(lo, hi, BAR_LABEL_W, BAR_LABEL_W + BAR_PLOT_W)
    zero = x(min(max(0.0, lo), hi))
    height = len(bars) * BAR_ROW + 26
    body = []
    for i, bar in enumerate(bars):
        top = 6 + i * BAR_ROW
        mid = top + 8
        body.append(_text(BAR_LABEL_W - 6, mid + 4, bar.label, anchor="end"))
        if bar.value is not None:
            end = x(min(max(bar.value, lo), hi))
            body.append(
                f'<rect x="{min(zero, end):.1f}" y="{top}" width="{abs(end - zero):.1f}" height="16" '
                f'class="bar"/>'
            )
        if bar.low is not None and bar.high is not None:
            body.append(
                f'<line x1="{x(bar.low):.1f}" x2="{x(bar.high):.1f}" y1="{mid}" y2="{mid}" class="whisker"/>'
            )
        if bar.marker is not None:
            mx = x(bar.marker)
            body.append(f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{top - 2}" y2="{top + 18}" class="marker"/>')
        body.append(_text(BAR_LABEL_W + BAR_PLOT_W + 8, mid + 4, bar.text))
    axis_y = len(bars) * BAR_ROW + 4
    body.append(f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="2" y2="{axis_y}" class="axis"/>')
    body.append(_text(x(lo), axis_y + 16, f"{lo:g}", anchor="start", cls="tick"))
    body.append(_text(x(hi), axis_y + 16, f"{hi:g}", anchor="end", cls="tick"))
    return _svg(BAR_LABEL_W + BAR_PLOT_W + BAR_TEXT_W, height, title, body)


RELIABILITY_SIDE, RELIABILITY_PAD = 220, 36


def bin_radius(n: int, largest: int) -> float:
    """Circle radius of a reliability bin: area grows with the pairs in it, 2 to 8 pixels."""
    return 2 + 6 * math.sqrt(n / largest) if largest > 0 else 2.0


def reliability_diagram(bins: Sequence[Bin], *, title: str = "Reliability diagram") -> Markup:
    """Observed frequency against predicted probability; the dashed diagonal is perfect calibration."""
    side, pad = RELIABILITY_SIDE, RELIABILITY_PAD
    x = Scale(0.0, 1.0, pad, pad + side)
    y = Scale(0.0, 1.0, 8 + side, 8)
    shown = [b for b in bins if b.n > 0 and math.isfinite(b.predicted) and math.isfinite(b.observed)]
    largest = max((b.n for b in shown), default=0)
    body = [
        f'<rect x="{pad}" y="8" width="{side}" height="{side}" class="frame"/>',
        f'<line x1="{x(0):.1f}" y1="{y(0):.1f}" x2="{x(1):.1f}" y2="{y(1):.1f}" class="diagonal"/>',
    ]
    for t in (0.0, 0.5, 1.0):
        body.append(_text(x(t), 8 + side + 14, f"{t:g}", anchor="middle", cls="tick"))
        body.append(_text(pad - 4, y(t) + 4, f"{t:g}", anchor="end", cls="tick"))
    for b in shown:
        body.append(
            f'<circle cx="{x(b.predicted):.1f}" cy="{y(b.observed):.1f}" r="{bin_radius(b.n, largest):.1f}" '
            f'class="point"><title>predicted {b.predicted:.3f}, observed {b.observed:.3f}, '
            f"n={b.n}</title></circle>"
        )
    body.append(_text(pad + side, 8 + side + 28, "predicted probability", anchor="end", cls="tick"))
    return _svg(pad + side + 12, side + 44, title, body)
