"""`rm_eval.html`: one static, self-contained page per reward-model evaluation.

No scripts and no CDN: the charts are inline SVG whose coordinates are computed here, and every
piece of text (prompts and responses come from users and models) goes through Jinja2's autoescape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment

from tether.reward.evaluate import Accuracy, RMReport
from tether.reward.gate import GateCheck, GateVerdict, format_against, format_bar
from tether.reward.probes import ProbeResult

BAR_LEFT, BAR_WIDTH, ROW_HEIGHT = 130, 320, 26
PLOT = 240
"""Side of the reliability diagram, in pixels."""


@dataclass(frozen=True)
class _Bar:
    label: str
    y: float
    width: float
    low: float | None
    high: float | None
    bar: float | None
    text: str


def _x(value: float) -> float:
    return BAR_LEFT + BAR_WIDTH * value


def accuracy_bars(by_dimension: dict[str, Accuracy], bars: dict[str, float]) -> list[_Bar]:
    """One bar per dimension: accuracy, its interval as a whisker, and the gate's bar as a tick."""
    out = []
    for i, (dim, acc) in enumerate(by_dimension.items()):
        value = acc.accuracy
        out.append(
            _Bar(
                label=dim,
                y=10 + i * ROW_HEIGHT,
                width=BAR_WIDTH * (value or 0.0),
                low=None if acc.low is None else _x(acc.low),
                high=None if acc.high is None else _x(acc.high),
                bar=_x(bars[dim]) if dim in bars else None,
                text="no pairs" if value is None else f"{value:.2f} (n={acc.n})",
            )
        )
    return out


def reliability_points(report: RMReport) -> list[dict[str, float]]:
    """Bin centres of the reliability diagram in SVG coordinates, radius by bin size."""
    bins = [b for b in report.calibration.bins if b.count and b.mean_probability is not None]
    largest = max((b.count for b in bins), default=1)
    return [
        {
            "x": 20 + PLOT * (b.mean_probability or 0.0),
            "y": 10 + PLOT * (1 - (b.observed or 0.0)),
            "r": 2 + 6 * (b.count / largest) ** 0.5,
            "count": b.count,
            "p": b.mean_probability or 0.0,
            "obs": b.observed or 0.0,
        }
        for b in bins
    ]


def _num(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def check_cells(check: GateCheck) -> dict[str, str]:
    """A gate check's figures as text: value and interval never rounded onto the bar (see gate)."""
    signed = check.name.endswith(" probe")

    def figure(value: float | None) -> str:
        return "n/a" if value is None else format_against(value, check.bar, signed=signed)

    interval = (
        "n/a" if check.low is None or check.high is None else f"{figure(check.low)}–{figure(check.high)}"
    )
    side = "min" if check.op == ">=" else "max"
    return {
        "value": figure(check.value),
        "interval": interval,
        "bar": f"{side} {format_bar(check.bar, signed=signed)}",
    }


def render_report(
    report: RMReport,
    probes: Sequence[ProbeResult] = (),
    verdict: GateVerdict | None = None,
    *,
    dimension_bars: dict[str, float] | None = None,
    title: str = "Reward model evaluation",
) -> str:
    """The page as a string; `dimension_bars` are the gate's per-dimension minimums, drawn as ticks."""
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["cells"] = check_cells
    bars = dimension_bars or {}
    context: dict[str, Any] = {
        "title": title,
        "r": report,
        "probes": list(probes),
        "verdict": verdict,
        "bars": accuracy_bars(report.by_dimension, bars),
        "gold_bars": accuracy_bars(report.gold.by_dimension, bars) if report.gold else [],
        "points": reliability_points(report),
        "plot": PLOT,
        "svg_width": BAR_LEFT + BAR_WIDTH + 120,
        "row_height": ROW_HEIGHT,
        "bar_left": BAR_LEFT,
    }
    return env.from_string(_TEMPLATE).render(**context)


def write_report(path: Path, report: RMReport, probes: Sequence[ProbeResult] = (), **kwargs: Any) -> Path:
    path.write_text(render_report(report, probes, **kwargs), encoding="utf-8")
    return path


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ title }}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}
.pass{color:#176b2c;font-weight:bold}.fail{color:#a11;font-weight:bold}.marginal{color:#9a5b00;font-weight:bold}
.text{max-width:320px;white-space:pre-wrap;word-break:break-word}.muted{color:#777}svg text{font-size:12px}
</style></head><body>
<h1>{{ title }}</h1>
<p class="muted">
{% for k, v in r.context.items() %}{{ k }}: {{ v }}{% if not loop.last %} · {% endif %}{% endfor %}
{% if r.context %}<br>{% endif %}spec {{ r.spec_hash[:12] }} · {{ r.n_pairs }} held-out pairs
{% if r.ties_skipped %} ({{ r.ties_skipped }} ties skipped){% endif %}</p>

{% if verdict %}
<h2>Gate: {% if verdict.passed %}<span class="pass">passed</span>{% else %}<span class="fail">FAILED</span>
{% endif %}</h2>
{% if verdict.failures %}<ul>{% for f in verdict.failures %}<li>{{ f }}</li>{% endfor %}</ul>{% endif %}
{% if verdict.warnings %}<p>Warnings:</p>
<ul>{% for w in verdict.warnings %}<li>{{ w }}</li>{% endfor %}</ul>{% endif %}
{% if verdict.checks %}
<p>Each check: pass when its whole 95% interval clears the bar, fail when the whole interval misses it,
marginal when the interval straddles it; the spec's gate policy decides a marginal check.</p>
<table><tr><th>check</th><th>status</th><th>value</th><th>95% CI</th><th>bar</th><th>decided</th>
<th>detail</th></tr>
{% for c in verdict.checks %}
{% set cell = c|cells %}
<tr><td>{{ c.name }}{% if c.critical %} (critical){% endif %}</td>
<td class="{{ c.status }}">{{ c.status }}</td><td>{{ cell.value }}</td><td>{{ cell.interval }}</td>
<td>{{ cell.bar }}</td><td class="{{ c.decided }}">{{ c.decided }}</td><td>{{ c.message }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% endif %}

{% macro accuracy_chart(rows) %}
<svg width="{{ svg_width }}" height="{{ rows|length * row_height + 30 }}" role="img">
{% for b in rows %}
<text x="4" y="{{ b.y + 13 }}">{{ b.label }}</text>
<rect x="{{ bar_left }}" y="{{ b.y }}" width="{{ b.width }}" height="16" fill="#7aa6d6"/>
{% if b.low is not none %}
<line x1="{{ b.low }}" x2="{{ b.high }}" y1="{{ b.y + 8 }}" y2="{{ b.y + 8 }}"
 stroke="#123" stroke-width="2"/>
{% endif %}
{% if b.bar is not none %}
<line x1="{{ b.bar }}" x2="{{ b.bar }}" y1="{{ b.y - 2 }}" y2="{{ b.y + 18 }}"
 stroke="#c22" stroke-width="2"/>
{% endif %}
<text x="{{ svg_width - 110 }}" y="{{ b.y + 13 }}">{{ b.text }}</text>
{% endfor %}
<text x="{{ bar_left }}" y="{{ rows|length * row_height + 24 }}" class="muted">0</text>
<text x="{{ bar_left + 310 }}" y="{{ rows|length * row_height + 24 }}" class="muted">1</text>
</svg>
{% endmacro %}

<h2>Accuracy</h2>
<p>Overall {{ r.overall.accuracy|num }}
(95% CI {{ r.overall.low|num }}–{{ r.overall.high|num }}, n={{ r.overall.n }}).
Strict: a tied reward counts as wrong.
Bars: accuracy; black: 95% bootstrap interval; red: the gate's minimum.</p>
{{ accuracy_chart(bars) }}
<table><tr><th>stratum</th><th>accuracy</th><th>95% CI</th><th>n</th></tr>
{% for s, a in r.by_stratum.items() %}
<tr><td>{{ s }}</td><td>{{ a.accuracy|num }}</td>
<td>{{ a.low|num }}–{{ a.high|num }}</td><td>{{ a.n }}</td></tr>
{% endfor %}
</table>

{% if r.gold %}
<h2>Against gold</h2>
<p>Overall {{ r.gold.overall.accuracy|num }} on {{ r.gold.overall.n }} pairs where gold prefers one side;
the raters' labels agreed with gold on {{ r.gold.labels_agree|num }} of them.</p>
{{ accuracy_chart(gold_bars) }}
{% endif %}

<h2>Calibration</h2>
<p>ECE {{ r.calibration.ece|num }} ({{ r.calibration.n_bins }} equal-width bins),
Brier {{ r.calibration.brier|num }}.
σ(r<sub>A</sub> − r<sub>B</sub>) against the labels, each pair counted in both orders.</p>
<svg width="{{ plot + 40 }}" height="{{ plot + 40 }}" role="img">
<rect x="20" y="10" width="{{ plot }}" height="{{ plot }}" fill="none" stroke="#999"/>
<line x1="20" y1="{{ plot + 10 }}" x2="{{ plot + 20 }}" y2="10" stroke="#bbb" stroke-dasharray="4 3"/>
{% for p in points %}
<circle cx="{{ p.x }}" cy="{{ p.y }}" r="{{ p.r }}" fill="#2b6cb0" fill-opacity=".7">
<title>predicted {{ p.p|num }}, observed {{ p.obs|num }}, n={{ p.count }}</title></circle>
{% endfor %}
<text x="20" y="{{ plot + 30 }}">predicted probability →</text>
<text x="14" y="{{ plot + 10 }}" transform="rotate(-90 14 {{ plot + 10 }})">observed frequency →</text>
</svg>

<h2>Baselines and length</h2>
<table><tr><th>rule</th><th>accuracy</th></tr>
<tr><td>reward model</td><td>{{ r.overall.accuracy|num }}</td></tr>
<tr><td>pick the longer response</td><td>{{ r.baselines.pick_longer|num }}</td></tr>
<tr><td>pick position A ({{ r.baselines.position_source }})</td><td>{{ r.baselines.pick_a|num }}</td></tr>
</table>
<p>Pearson correlation of reward with response length in words: {{ r.length_correlation|num }}.</p>

{% if probes %}
<h2>Bias probes</h2>
<p>Mean reward change when a response is edited in a way that should not make it better.</p>
<table><tr><th>probe</th><th>n</th><th>mean Δ</th><th>95% CI</th><th>share raised</th><th>note</th></tr>
{% for p in probes %}
<tr><td>{{ p.name }}</td><td>{{ p.n }}</td><td>{{ p.mean_delta|num('+.3f') }}</td>
<td>{{ p.low|num('+.3f') }}–{{ p.high|num('+.3f') }}</td><td>{{ p.raised_share|num }}</td>
<td>{{ p.note }}</td></tr>
{% endfor %}
</table>
{% endif %}

<h2>Most confident mistakes</h2>
{% if r.failures %}
<table><tr><th>dimension</th><th>stratum</th><th>P(rejected)</th><th>prompt</th>
<th>chosen (r)</th><th>rejected (r)</th></tr>
{% for f in r.failures %}
<tr><td>{{ f.dimension }}</td><td>{{ f.stratum }}</td><td>{{ f.confidence|num }}</td>
<td class="text">{{ f.prompt }}</td><td class="text">{{ f.chosen }} ({{ f.reward_chosen|num }})</td>
<td class="text">{{ f.rejected }} ({{ f.reward_rejected|num }})</td></tr>
{% endfor %}
</table>
{% else %}<p>None: every held-out pair was ranked correctly.</p>{% endif %}
</body></html>
"""
