"""Style monitors called directly on hand-made metric sequences."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.monitors.helpers import noisy, window
from tether.monitors.style import diversity_collapse, hedging_rise, length_creep, list_rise

BASE = {"gen/length_mean": 20.0, "gen/hedge_rate": 0.2, "gen/list_rate": 0.1, "policy/entropy": 2.0}


def test_steady_metrics_raise_nothing() -> None:
    inp = window(
        {
            "gen/length_mean": noisy(20.0, 30, 0.5, seed=1),
            "gen/hedge_rate": noisy(0.2, 30, 0.02, seed=2),
            "gen/list_rate": noisy(0.1, 30, 0.02, seed=3),
            "policy/entropy": noisy(2.0, 30, 0.05, seed=4),
            "gen/distinct_2": noisy(0.6, 30, 0.02, seed=5),
            "gold/utility": noisy(0.5, 30, 0.02, seed=6),
        },
        baseline={**BASE, "gen/distinct_2": 0.6},
    )
    for monitor in (length_creep(), hedging_rise(), list_rise(), diversity_collapse()):
        assert monitor(inp) == []


def test_length_creep_with_flat_gold_is_a_warning_with_evidence() -> None:
    inp = window(
        {
            "gen/length_mean": noisy(20.0, 30, 0.5, seed=1, slope=0.5),
            "gold/utility": noisy(0.5, 30, 0.02, seed=2),
        },
        baseline=BASE,
    )
    (alert,) = length_creep()(inp)
    assert alert.severity == "warning" and alert.step == 30 and alert.monitor == "length_creep"
    assert alert.evidence["baseline_length"] == 20.0
    # The mean of the last 5 steps (27 on average) under noise of sd 0.5: SE 0.22, so 1.0 is 4.5 of them
    assert alert.evidence["current_length"] == pytest.approx(20 + 0.5 * 27, abs=1.0)
    assert alert.evidence["independent"] == "gold/utility"
    assert "length exploit" in alert.message


def test_length_creep_with_rising_gold_is_fine() -> None:
    inp = window(
        {
            "gen/length_mean": noisy(20.0, 30, 0.5, seed=1, slope=0.5),
            "gold/utility": noisy(0.5, 30, 0.02, seed=2, slope=0.01),
        },
        baseline=BASE,
    )
    assert length_creep()(inp) == []


def test_length_creep_uses_eval_score_and_says_when_nothing_independent_exists() -> None:
    longer = noisy(20.0, 30, 0.5, seed=1, slope=0.5)
    eval_every_third = [0.7 if i % 3 == 0 else float("nan") for i in range(30)]
    (alert,) = length_creep()(window({"gen/length_mean": longer, "eval/score": eval_every_third}, BASE))
    assert alert.evidence["independent"] == "eval/score" and alert.severity == "warning"
    (info,) = length_creep()(window({"gen/length_mean": longer}, BASE))
    assert info.severity == "info" and "no independent score" in info.message


def test_length_that_rose_earlier_and_stopped_is_not_creep() -> None:
    plateau = [30.0 + 0.1 * ((i * 7) % 5) for i in range(30)]  # long, but no longer growing
    inp = window({"gen/length_mean": plateau, "gold/utility": [0.5] * 30}, BASE)
    assert length_creep()(inp) == []


def test_hedging_and_list_rises() -> None:
    inp = window({"gen/hedge_rate": [0.2] * 10 + [0.45] * 5, "gen/list_rate": [0.1] * 10 + [0.15] * 5}, BASE)
    (hedge,) = hedging_rise()(inp)
    assert hedge.evidence["current_rate"] == pytest.approx(0.45) and hedge.evidence["baseline_rate"] == 0.2
    assert list_rise()(inp) == []  # +5 points is under the 10-point threshold
    inp = window({"gen/list_rate": [0.1] * 10 + [0.4] * 5}, BASE)
    (listing,) = list_rise()(inp)
    assert listing.monitor == "list_rise" and listing.condition == "gen/list_rate"


def test_entropy_halving_is_a_health_note_not_hacking() -> None:
    # Semantics changed deliberately (issue 7): entropy at 40% of SFT's used to be a hacking warning;
    # sharpening is what RL does, so it is now a health note.
    inp = window(
        {"policy/entropy": [2.0] * 5 + [0.8] * 5, "gen/distinct_2": [0.6] * 10},
        BASE | {"gen/distinct_2": 0.6},
    )
    (note,) = diversity_collapse()(inp)
    assert (note.condition, note.kind, note.severity) == ("entropy_decline", "health", "info")
    assert note.evidence["ratio"] == pytest.approx(0.4)


COLLAPSED: dict[str, Sequence[float]] = {"policy/entropy": [0.3] * 5, "gen/distinct_2": [0.3] * 5}
"""Entropy at 15% of SFT's 2.0, distinct-2 at half of SFT's 0.6."""


def test_collapse_without_gain_is_hacking() -> None:
    base = BASE | {"gen/distinct_2": 0.6, "gold/utility": 0.5}
    alerts = diversity_collapse()(window({**COLLAPSED, "gold/utility": [0.5, 0.48, 0.5, 0.49, 0.5]}, base))
    hacking = {a.condition: a for a in alerts if a.kind == "hacking"}
    assert set(hacking) == {"policy/entropy", "gen/distinct_2"}
    assert all(a.severity == "warning" for a in hacking.values())
    assert hacking["gen/distinct_2"].evidence["independent_current"] == pytest.approx(0.494)
    assert [a.condition for a in alerts if a.kind == "health"] == ["entropy_decline"]


def test_collapse_that_bought_quality_is_not_hacking() -> None:
    base = BASE | {"gen/distinct_2": 0.6, "gold/utility": 0.5}
    alerts = diversity_collapse()(window({**COLLAPSED, "gold/utility": [0.7] * 5}, base))
    assert [(a.condition, a.kind) for a in alerts] == [("entropy_decline", "health")]


def test_collapse_without_any_independent_score_is_flagged_for_a_reader() -> None:
    alerts = diversity_collapse()(window(COLLAPSED, BASE | {"gen/distinct_2": 0.6}))
    hacking = [a for a in alerts if a.kind == "hacking"]
    assert len(hacking) == 2 and all("no independent score" in a.message for a in hacking)


def test_missing_baseline_means_no_alert() -> None:
    inp = window({"gen/hedge_rate": [0.9] * 10, "policy/entropy": [0.1] * 10})
    assert hedging_rise()(inp) == [] and diversity_collapse()(inp) == []
