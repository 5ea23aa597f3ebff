"""Render `ReportData` as one self-contained, offline HTML page.

The page loads nothing: no script, no font, no image, no stylesheet link. Charts are inline SVG
(`tether.report.svg`), styles sit in one <style> element, and a Content-Security-Policy of
`default-src 'none'` makes the browser refuse any request the page might still contain. All text
(rater names, prompts in alert messages, spec text) goes through Jinja2's autoescape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from tether.files import write_text_atomic
from tether.report import svg
from tether.report.model import (
    EvalSection,
    GateSection,
    IterationReport,
    LabelSection,
    NotRun,
    ReportData,
    RLSection,
)
from tether.report.svg import CHART_CSS

TEMPLATE = "report.html.j2"


@dataclass(frozen=True)
class SummaryRow:
    """One iteration in the table at the top of the page."""

    number: int
    status: str
    spec: str
    gate: str
    gold_utility: float | None
    sft_gold_utility: float | None
    kl_running: float | None
    kl_budget: float | None
    kl_verdict: str
    alerts: dict[str, int]
    regressions: tuple[str, ...]


def summary_row(it: IterationReport) -> SummaryRow:
    gate = (
        "not run"
        if isinstance(it.gate, NotRun)
        else {True: "passed", False: "failed", None: "?"}[it.gate.passed]
    )
    evals = None if isinstance(it.evals, NotRun) else it.evals
    rl = None if isinstance(it.rl, NotRun) else it.rl
    gold = evals.gold_utility if evals else None
    if gold is None and rl is not None:
        gold = rl.final.get("gold/utility")
    return SummaryRow(
        number=it.number,
        status=it.status,
        spec=it.spec.version or it.spec.spec_hash[:12],
        gate=gate,
        gold_utility=gold,
        sft_gold_utility=evals.sft_gold_utility if evals else None,
        kl_running=rl.kl.running if rl else None,
        kl_budget=rl.kl.budget if rl else None,
        kl_verdict=rl.kl.verdict if rl else "not run",
        alerts=it.alert_counts(),
        regressions=evals.regressions if evals else (),
    )


# --- charts -----------------------------------------------------------------------------------


def count_bars(counts: dict[str, int], *, title: str) -> Markup:
    total = sum(counts.values()) or 1
    bars = [svg.Bar(k, v, text=f"{v} ({v / total:.0%})") for k, v in counts.items()]
    return svg.interval_bars(bars, title=title)


def label_charts(section: LabelSection) -> dict[str, Markup]:
    out = {}
    if section.by_dimension:
        out["by_dimension"] = count_bars(section.by_dimension, title="Judgments by dimension")
    if section.by_stratum:
        out["by_stratum"] = count_bars(section.by_stratum, title="Judgments by stratum")
    return out


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def gate_charts(section: GateSection) -> dict[str, Markup]:
    bars = section.thresholds.by_dimension
    out = {}
    if section.by_dimension:
        rows = [
            svg.Bar(dim, e.value, e.low, e.high, bars.get(dim), f"{_fmt(e.value)} (n={e.n})")
            for dim, e in section.by_dimension.items()
        ]
        out["accuracy"] = svg.interval_bars(
            rows, title="Reward-model accuracy by dimension", domain=(0.0, 1.0)
        )
    if section.gold_by_dimension:
        rows = [
            svg.Bar(dim, e.value, e.low, e.high, bars.get(dim), f"{_fmt(e.value)} (n={e.n})")
            for dim, e in section.gold_by_dimension.items()
        ]
        out["gold"] = svg.interval_bars(rows, title="Accuracy against sandbox gold", domain=(0.0, 1.0))
    bins = [
        svg.Bin(b.mean_predicted, b.observed, b.n)
        for b in section.reliability
        if b.mean_predicted is not None and b.observed is not None
    ]
    if bins:
        out["reliability"] = svg.reliability_diagram(bins)
    if section.probes:
        limits = section.thresholds.max_probe_delta
        rows = [
            svg.Bar(p.name, p.mean_delta, p.low, p.high, limits.get(p.name), f"{_fmt(p.mean_delta, '+.3f')}")
            for p in section.probes
        ]
        out["probes"] = svg.interval_bars(rows, title="Probe deltas (mean reward change)")
    return out


def eval_charts(section: EvalSection) -> dict[str, Markup]:
    out = {}
    if section.scores:
        rows = [
            svg.Bar(
                dim,
                e.value,
                e.low,
                e.high,
                section.sft_scores[dim].value if dim in section.sft_scores else None,
                f"{_fmt(e.value)} (n={e.n})",
            )
            for dim, e in section.scores.items()
        ]
        out["scores"] = svg.interval_bars(rows, title="Eval scores (tick: SFT)")
    if section.vs_sft:
        rows = [
            svg.Bar(
                dim,
                d.delta,
                d.low,
                d.high,
                text=_fmt(d.delta, "+.3f") + (" regression" if d.regression else ""),
            )
            for dim, d in section.vs_sft.items()
        ]
        out["vs_sft"] = svg.interval_bars(rows, title="Change against SFT")
    return out


def rl_charts(section: RLSection) -> list[tuple[str, Markup]]:
    """(caption, chart) of each RL curve."""
    out = []
    for chart in section.charts:
        lines = [svg.Line(name, points) for name, points in chart.series.items()]
        reference = None if chart.reference is None else svg.Reference(chart.reference, chart.reference_label)
        out.append((chart.title, svg.line_chart(lines, title=chart.title, reference=reference)))
    return out


def iteration_charts(it: IterationReport) -> dict[str, Any]:
    """Every chart of one iteration, keyed by section; sections that did not run have none."""
    return {
        "label": {} if isinstance(it.label, NotRun) else label_charts(it.label),
        "gate": {} if isinstance(it.gate, NotRun) else gate_charts(it.gate),
        "evals": {} if isinstance(it.evals, NotRun) else eval_charts(it.evals),
        "rl": [] if isinstance(it.rl, NotRun) else rl_charts(it.rl),
    }


# --- page -------------------------------------------------------------------------------------


def _num(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("tether.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["when"] = _when
    env.tests["notrun"] = lambda value: isinstance(value, NotRun)
    return env


def render_report(data: ReportData) -> str:
    """The page as a string."""
    return (
        environment()
        .get_template(TEMPLATE)
        .render(
            data=data,
            summary=[summary_row(it) for it in data.iterations],
            charts={it.number: iteration_charts(it) for it in data.iterations},
            chart_css=CHART_CSS,
        )
    )


def write_report(data: ReportData, out: Path) -> Path:
    """Write the page to `out` through a temporary file, so `out` is never half-written."""
    return write_text_atomic(out, render_report(data))
