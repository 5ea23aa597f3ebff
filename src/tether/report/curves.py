"""The RL section: curves from a run's metrics.jsonl and its KL against the spec's budget.

The metrics file has one JSON object per step (`tether.rl.loggers.JsonlMetricSink`); a run that
was killed can leave a half-written last line, and a resumed run logs some steps twice (the later
value wins, as it does in the trackers).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping

from tether.feedback.loop.results_policy import RLResult
from tether.report.model import Chart, KLVerdict, RLSection
from tether.report.sections import num
from tether.rl.kl_control import RUNNING_KL_WINDOW, running_kl

Metrics = dict[str, tuple[tuple[float, float], ...]]
"""Metric name → (step, value) points in step order."""

KL = "objective/kl"
CHARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("RM score", ("objective/rm_score",)),
    ("KL to the SFT policy (nats per sequence)", (KL,)),
    ("Response length (words)", ("gen/length_mean",)),
    ("Hedge and list rates", ("gen/hedge_rate", "gen/list_rate")),
)
"""Charts drawn for every run, with 'no data logged' when a metric is missing."""
GOLD_PREFIX = "gold/"
GOLD_NOT_A_SCORE = ("gold/parsed",)
"""Gold metrics that are not scores: the share of responses the sandbox could parse."""
EVAL_SCORE = "eval/score"


def parse_metrics(lines: Iterable[str]) -> tuple[Metrics, int]:
    """Series per metric, and how many lines were unreadable (not a JSON object with a step)."""
    by_key: dict[str, dict[float, float]] = {}
    bad = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        step = num(row.get("step")) if isinstance(row, dict) else None
        if step is None:
            bad += 1
            continue
        for key, value in row.items():
            number = num(value)
            if key != "step" and number is not None:
                by_key.setdefault(key, {})[step] = number
    return {key: tuple(sorted(points.items())) for key, points in by_key.items()}, bad


def kl_verdict(metrics: Metrics, final: Mapping[str, float], budget: float | None) -> KLVerdict:
    """Running, last and peak KL; the verdict uses the running KL, as the kl_budget monitor does,
    so one noisy batch above the budget does not read as a run over budget."""
    points = metrics.get(KL, ())
    if not points:
        value = final.get(KL)
        return KLVerdict(budget, value, value, None, None)
    values = [v for _, v in points]
    peak_step, peak = max(points, key=lambda p: p[1])
    running = running_kl(values)
    return KLVerdict(
        budget=budget,
        running=running if math.isfinite(running) else None,
        last=values[-1],
        peak=peak,
        peak_step=int(peak_step),
        window=min(RUNNING_KL_WINDOW, len(values)),
    )


def charts(metrics: Metrics, budget: float | None) -> tuple[Chart, ...]:
    """The RL curves; gold (sandbox only) and eval scores only when the run logged them."""
    out = []
    for title, keys in CHARTS:
        series = {key: metrics.get(key, ()) for key in keys}
        if keys == (KL,) and budget is not None:
            out.append(Chart(title, series, budget, f"budget {budget:g}"))
        else:
            out.append(Chart(title, series))
    gold = sorted(k for k in metrics if k.startswith(GOLD_PREFIX) and k not in GOLD_NOT_A_SCORE)
    if gold:
        # Utility first: it is the one number the sandbox exists to measure.
        ordered = sorted(gold, key=lambda k: (k != "gold/utility", k))
        out.append(Chart("Gold in the sandbox", {k: metrics[k] for k in ordered}))
    if metrics.get(EVAL_SCORE):
        out.append(Chart("Eval score", {EVAL_SCORE: metrics[EVAL_SCORE]}))
    return tuple(out)


def rl_section(result: RLResult, metrics: Metrics, note: str | None) -> RLSection:
    """The RL step's results with its curves; `note` says why curves are missing or partial."""
    final = dict(result.final)
    budget = result.kl_budget
    return RLSection(
        run_id=result.run_id,
        artifact=result.artifact,
        status=result.status,
        reason_stopped=result.reason_stopped,
        steps=result.steps,
        final=final,
        kl=kl_verdict(metrics, final, budget),
        charts=charts(metrics, budget),
        metrics_note=note,
    )
