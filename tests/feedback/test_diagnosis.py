"""The diagnosis's focus from hand-made iteration figures."""

from __future__ import annotations

import doctest
import re

import pytest

from tether.feedback import diagnosis
from tether.feedback.diagnosis import (
    Focus,
    eval_weakness,
    finding_weakness,
    propose_focus,
    rm_weakness,
    summarize_iteration,
    weakest_strata,
)
from tether.feedback.loop.results import GateResult
from tether.feedback.loop.results_policy import RLResult

BARS = {"accuracy": 0.65, "safety": 0.75, "honesty": 0.70, "concision": 0.60}


def acc(value: float) -> dict[str, float]:
    return {"accuracy": value, "low": value - 0.05, "high": value + 0.05, "n": 100}


def test_rm_weakness_is_the_shortfall_below_bar_plus_margin() -> None:
    assert rm_weakness(acc(0.80), bar=0.75) == pytest.approx(0.05)
    assert rm_weakness(acc(0.90), bar=0.75) == 0.0
    assert rm_weakness(None, bar=0.75) == 0.0


def test_eval_weakness_counts_a_regression_fully_and_a_drop_by_its_size() -> None:
    assert eval_weakness({"delta": -0.02, "regression": True}) == 1.0
    assert eval_weakness({"delta": -0.02, "regression": False}) == pytest.approx(0.02)
    assert eval_weakness({"delta": 0.05, "regression": False}) == 0.0


def test_finding_weakness_is_half_the_share_of_findings() -> None:
    assert finding_weakness({"concision": 30, "safety": 10}, "concision") == pytest.approx(0.375)
    assert finding_weakness({}, "concision") == 0.0


def test_focus_weights_follow_the_signals() -> None:
    focus = propose_focus(
        bars=BARS,
        rm_by_dimension={
            "accuracy": acc(0.90),
            "safety": acc(0.80),
            "honesty": acc(0.95),
            "concision": acc(0.95),
        },
        vs_sft={"concision": {"delta": -0.1, "regression": True}, "safety": {"delta": 0.02}},
        alerts=[{"monitor": "length_creep", "severity": "warning"}],
        findings_by_dimension={"concision": 40},
    )
    # concision: eval 1.0 + findings 0.5 + style 0.5 = 2.0; safety: rm 0.05 -> weights 2/2.05, 0.05/2.05
    assert list(focus.weights) == ["concision", "safety"]
    assert focus.weights["concision"] == pytest.approx(2.0 / 2.05, abs=1e-4)
    assert focus.findings == 40 and focus.alerts == ["warning:length_creep"]
    assert any("regressed on concision" in r for r in focus.reasons)
    assert Focus.from_dict(focus.to_dict()) == focus


def test_nothing_weak_gives_an_empty_focus_and_says_so() -> None:
    focus = propose_focus(bars=BARS, rm_by_dimension={d: acc(0.99) for d in BARS})
    assert focus.weights == {}
    text = summarize_iteration(1, focus, gate=GateResult.from_dict({"passed": True, "overall": acc(0.8)}))
    assert "gate passed" in text and "none stands out" in text


def test_weakest_strata_orders_by_accuracy() -> None:
    assert weakest_strata({"routine": acc(0.8), "edge": acc(0.6), "hard": acc(0.7), "x": {}}) == [
        "edge",
        "hard",
    ]


def test_docstring_examples() -> None:
    result = doctest.testmod(diagnosis)
    assert result.attempted > 0 and result.failed == 0


def test_an_accuracy_that_misses_its_bar_never_prints_equal_to_it() -> None:
    # safety's bar is 0.75 + 0.10 = 0.85: 0.847 and 0.8496 both round to 0.85 at two decimals
    for accuracy, printed in ((0.847, "0.847"), (0.8496, "0.8496")):
        focus = propose_focus(bars={"safety": 0.75}, rm_by_dimension={"safety": acc(accuracy)})
        [reason] = [r for r in focus.reasons if "accuracy on safety" in r]
        match = re.fullmatch(r".* safety ([0-9.]+) is under its bar 0.75 \+ 0.1 = ([0-9.]+)", reason)
        assert match is not None, reason
        value, bar = match.groups()
        assert value == printed and float(value) < float(bar) == pytest.approx(0.85)


def test_a_kl_over_its_budget_never_prints_equal_to_it() -> None:
    rl = {"steps": 3, "status": "completed", "kl_budget": 5.0, "final": {"objective/kl": 5.004}}
    text = summarize_iteration(1, Focus(), rl=RLResult.from_dict(rl))
    assert "KL 5.004 of 5.000 nats (over budget)" in text
    rl["final"] = {"objective/kl": 2.5}
    assert "KL 2.50 of 5.00 nats (within budget)" in summarize_iteration(
        1, Focus(), rl=RLResult.from_dict(rl)
    )
