"""Metrics parsing, the KL verdict and the RL charts."""

from __future__ import annotations

import json

import pytest

from tether.feedback.loop.results_policy import RLResult
from tether.report.curves import Metrics, charts, kl_verdict, parse_metrics, rl_section


def test_parse_metrics_skips_bad_lines_and_keeps_the_last_value_of_a_repeated_step() -> None:
    lines = [
        json.dumps({"step": 1, "objective/kl": 0.5, "note": "text", "gen/list_rate": None}),
        json.dumps({"step": 2, "objective/kl": 0.7}),
        json.dumps({"step": 2, "objective/kl": 0.9}),  # a resumed run logged step 2 again
        "",
        "[1, 2]",
        json.dumps({"objective/kl": 9.0}),  # no step
        '{"step": 3, "objective/k',  # cut off by a kill
    ]
    metrics, bad = parse_metrics(lines)
    assert metrics == {"objective/kl": ((1.0, 0.5), (2.0, 0.9))}
    assert bad == 3


def test_kl_verdict_uses_the_running_kl_over_the_last_ten_steps() -> None:
    # Steps 1..20 with KL = step / 4: the last ten are 2.75..5.0, mean 3.875; peak 5.0 at step 20.
    metrics = {"objective/kl": tuple((float(s), s / 4) for s in range(1, 21))}
    verdict = kl_verdict(metrics, {}, budget=4.0)
    assert verdict.running == pytest.approx(3.875)
    assert (verdict.last, verdict.peak, verdict.peak_step, verdict.window) == (5.0, 5.0, 20, 10)
    assert verdict.within is True and verdict.verdict == "within budget"
    assert kl_verdict(metrics, {}, budget=3.5).verdict == "over budget"


def test_kl_verdict_without_a_series_uses_the_final_metric() -> None:
    verdict = kl_verdict({}, {"objective/kl": 6.0}, budget=5.0)
    assert (verdict.running, verdict.window, verdict.verdict) == (6.0, None, "over budget")
    assert kl_verdict({}, {}, budget=5.0).verdict == "unknown"
    assert kl_verdict({}, {"objective/kl": 1.0}, budget=None).within is None


def test_charts_draw_the_budget_and_order_gold_with_utility_first() -> None:
    point = ((1.0, 0.5),)
    metrics: Metrics = {
        "objective/kl": point,
        "gold/safety": point,
        "gold/utility": point,
        "gold/parsed": point,
    }
    drawn = {c.title: c for c in charts(metrics, budget=5.0)}
    kl = drawn["KL to the SFT policy (nats per sequence)"]
    assert (kl.reference, kl.reference_label) == (5.0, "budget 5")
    assert list(drawn["Gold in the sandbox"].series) == ["gold/utility", "gold/safety"]
    assert drawn["RM score"].series == {"objective/rm_score": ()}  # drawn as "no data logged"
    assert "Eval score" not in drawn


def test_rl_section_keeps_only_numeric_final_metrics() -> None:
    stored = {"final": {"objective/kl": 2.0, "bad": "x"}, "kl_budget": 5, "steps": 10}
    section = rl_section(RLResult.from_dict(stored), {}, "no file")
    assert section.final == {"objective/kl": 2.0}
    assert (section.steps, section.metrics_note, section.kl.verdict) == (10, "no file", "within budget")
    assert section.run_id is None and section.status is None
