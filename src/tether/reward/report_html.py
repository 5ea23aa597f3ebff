"""`rm_eval.html`: one static, self-contained page per reward-model evaluation.

No scripts and no CDN: the charts are the loop report's inline SVG (`tether.report.svg`), a
Content-Security-Policy of `default-src 'none'` makes the browser refuse any request the page might
still contain, and every piece of text (prompts and responses come from users and models) goes
through Jinja2's autoescape. The page is written whole (`tether.files.write_text_atomic`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from tether.files import write_text_atomic
from tether.report.svg import CHART_CSS, Bar, Bin, interval_bars, reliability_diagram
from tether.reward.evaluate import Accuracy, RMReport
from tether.reward.gate import GateCheck, GateVerdict, format_against, format_bar
from tether.reward.probes import ProbeResult


def accuracy_bars(by_dimension: dict[str, Accuracy], bars: dict[str, float], *, title: str) -> Markup:
    """One bar per dimension on [0, 1]: accuracy, its interval as a whisker, the gate's bar as a tick."""
    rows = [
        Bar(
            label=dim,
            value=acc.accuracy,
            low=acc.low,
            high=acc.high,
            marker=bars.get(dim),
            text="no pairs" if acc.accuracy is None else f"{acc.accuracy:.2f} (n={acc.n})",
        )
        for dim, acc in by_dimension.items()
    ]
    return interval_bars(rows, title=title, domain=(0.0, 1.0))


def reliability(report: RMReport) -> Markup:
    """The reliability diagram of the report's calibration bins (empty bins left out)."""
    bins = [
        Bin(b.mean_probability, b.observed, b.count)
        for b in report.calibration.bins
        if b.count and b.mean_probability is not None and b.observed is not None
    ]
    return reliability_diagram(bins)


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
    gold = report.gold
    context: dict[str, Any] = {
        "title": title,
        "r": report,
        "probes": list(probes),
        "verdict": verdict,
        "accuracy_chart": accuracy_bars(report.by_dimension, bars, title="Accuracy by dimension"),
        "gold_chart": accuracy_bars(gold.by_dimension, bars, title="Accuracy against gold") if gold else None,
        "reliability_chart": reliability(report),
        "chart_css": CHART_CSS,
    }
    return env.from_string(_TEMPLATE).render(**context)


def write_report(path: Path, report: RMReport, probes: Sequence[ProbeResult] = (), **kwargs: Any) -> Path:
    """Write the page through a temporary file, so `path` is never half-written."""
    return write_text_atomic(path, render_report(report, probes, **kwargs))


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{{ title }}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}
.pass{color:#176b2c;font-weight:bold}.fail{color:#a11;font-weight:bold}.marginal{color:#9a5b00;font-weight:bold}
.text{max-width:320px;white-space:pre-wrap;word-break:break-word}.muted{color:#777}
{{ chart_css }}</style></head><body>
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

<h2>Accuracy</h2>
<p>Overall {{ r.overall.accuracy|num }}
(95% CI {{ r.overall.low|num }}–{{ r.overall.high|num }}, n={{ r.overall.n }}).
Strict: a tied reward counts as wrong.
Bars: accuracy; black: 95% bootstrap interval; red: the gate's minimum.</p>
{{ accuracy_chart }}
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
{{ gold_chart }}
{% endif %}

<h2>Calibration</h2>
<p>ECE {{ r.calibration.ece|num }} ({{ r.calibration.n_bins }} equal-width bins),
Brier {{ r.calibration.brier|num }}.
σ(r<sub>A</sub> − r<sub>B</sub>) against the labels, each pair counted in both orders.</p>
{{ reliability_chart }}

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
