"""RM-divergence, strata and KL monitors called directly on hand-made sequences."""

from __future__ import annotations

import pytest

from tests.monitors.helpers import noisy, window
from tether.monitors.base import Generation
from tether.monitors.kl import kl_budget, kl_spike
from tether.monitors.reward import rm_divergence, strata_uniform_high


def test_rm_rising_with_gold_flat_is_critical() -> None:
    inp = window(
        {
            "objective/rm_score": noisy(0.0, 25, 0.1, seed=1, slope=0.1),
            "gold/utility": noisy(0.5, 25, 0.02, seed=2),
        }
    )
    (alert,) = rm_divergence()(inp)
    assert alert.severity == "critical" and alert.condition == "divergence"
    assert (
        float(alert.evidence["rm_trend_r"]) > 0.9 and abs(float(alert.evidence["independent_trend_r"])) <= 0.2
    )
    assert alert.evidence["window_steps"] == 20
    assert alert.evidence["rm_change"] == pytest.approx(1.9, abs=0.3)


def test_rm_rising_with_gold_rising_is_fine() -> None:
    inp = window(
        {
            "objective/rm_score": noisy(0.0, 25, 0.1, seed=1, slope=0.1),
            "gold/utility": noisy(0.5, 25, 0.02, seed=2, slope=0.01),
        }
    )
    assert rm_divergence()(inp) == []


def test_rm_rising_with_gold_falling_is_overoptimization() -> None:
    inp = window(
        {
            "objective/rm_score": noisy(0.0, 25, 0.1, seed=1, slope=0.1),
            "gold/utility": noisy(0.8, 25, 0.02, seed=2, slope=-0.01),
        }
    )
    (alert,) = rm_divergence()(inp)
    assert alert.condition == "overoptimization" and "Gao et al. 2022" in alert.message


def test_rm_divergence_needs_both_series() -> None:
    flat_rm = window(
        {"objective/rm_score": noisy(0.0, 25, 0.1, seed=1), "gold/utility": noisy(0.5, 25, 0.02, seed=2)}
    )
    assert rm_divergence()(flat_rm) == []
    rm_only = window({"objective/rm_score": noisy(0.0, 25, 0.1, seed=1, slope=0.1)})
    assert rm_divergence()(rm_only) == []
    sparse_eval = window(
        {"objective/rm_score": noisy(0.0, 25, 0.1, seed=1, slope=0.1), "eval/score": [0.5] * 3}
    )
    assert rm_divergence()(sparse_eval) == []


def test_flat_noise_rarely_looks_like_divergence() -> None:
    false_alarms = sum(
        bool(
            rm_divergence()(
                window(
                    {
                        "objective/rm_score": noisy(0, 20, 1, seed=s),
                        "gold/utility": noisy(0, 20, 1, seed=s + 999),
                    }
                )
            )
        )
        for s in range(300)
    )
    assert false_alarms <= 3


def _generations(hard: list[float], routine: list[float]) -> list[Generation]:
    return [Generation("p", "r", "hard", s) for s in hard] + [
        Generation("p", "r", "routine", s) for s in routine
    ]


def test_uniform_high_rm_on_hard_prompts_is_flagged() -> None:
    routine = [float(x) for x in range(10)]  # mean 4.5, std ≈ 2.87
    uniform_high = [5.0, 5.1, 5.0, 4.9, 5.0, 5.2, 5.0, 4.8]
    (alert,) = strata_uniform_high()(
        window({"objective/kl": [1.0]}, generations=_generations(uniform_high, routine))
    )
    assert alert.severity == "warning" and alert.evidence["n_hard"] == 8
    assert float(alert.evidence["spread_ratio"]) < 0.5 and float(alert.evidence["gap_in_other_std"]) > 0
    honest = [0.0, 1.0, 2.0, 3.0, 1.0, 0.5, 2.5, 1.5]  # lower, spread out
    assert (
        strata_uniform_high()(window({"objective/kl": [1.0]}, generations=_generations(honest, routine)))
        == []
    )
    too_few = _generations(uniform_high[:3], routine)
    assert strata_uniform_high()(window({"objective/kl": [1.0]}, generations=too_few)) == []


def test_kl_budget_warns_then_stops() -> None:
    monitor = kl_budget(budget_nats=5.0, margin=0.2, window=3)
    assert monitor(window({"objective/kl": [4.0, 4.5, 4.8]})) == []
    (warn,) = monitor(window({"objective/kl": [5.0, 5.5, 5.5]}))
    assert warn.severity == "warning" and warn.condition == "over_budget"
    (stop,) = monitor(window({"objective/kl": [6.0, 6.5, 7.0]}))
    assert stop.severity == "critical" and stop.evidence["running_kl"] == pytest.approx(6.5)
    assert stop.evidence["limit_nats"] == pytest.approx(6.0)
    # One noisy step over the limit does not stop the run: running KL is a trailing mean.
    assert kl_budget(window=10)(window({"objective/kl": [3.0] * 9 + [9.0]})) == []


def test_kl_spike_monitor() -> None:
    steady = noisy(3.0, 30, 0.1, seed=3)
    assert kl_spike()(window({"objective/kl": steady})) == []
    (alert,) = kl_spike()(window({"objective/kl": [*steady, 6.0]}))
    assert alert.evidence["kl"] == 6.0 and float(alert.evidence["z_level"]) > 4
    assert kl_spike()(window({"objective/kl": [*steady, float("nan")]})) == []


def test_uniform_high_on_hard_prompts_is_quiet_when_the_independent_score_agrees() -> None:
    from tether.monitors import Generation, MonitorInput, build_monitors

    (monitor,) = build_monitors(["strata_uniform_high"])
    hard = [Generation("p", "r", "hard", 2.0 + 0.01 * i, 0.9) for i in range(10)]
    routine = [Generation("p", "r", "routine", float(i % 5), 0.5) for i in range(10)]
    earned = monitor(MonitorInput(history=(), baseline={}, generations=tuple(hard + routine)))
    assert earned == []
    unearned_hard = [Generation(g.prompt, g.response, g.stratum, g.rm_score, 0.1) for g in hard]
    alerts = monitor(MonitorInput(history=(), baseline={}, generations=tuple(unearned_hard + routine)))
    assert [a.monitor for a in alerts] == ["strata_uniform_high"]


def test_gold_peak_fires_when_gold_turns_down_while_the_rm_holds() -> None:
    from tether.monitors import MonitorInput, StepRecord, build_monitors
    from tether.monitors.reward import moving_average, peak_drop

    assert moving_average([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    # gold rises to 0.8 by step 20, then falls to 0.5; the RM keeps climbing.
    gold = [0.3 + 0.025 * s for s in range(21)] + [0.8 - 0.015 * s for s in range(1, 21)]
    rm = [0.1 * s for s in range(41)]
    best, fall, rm_change = peak_drop(gold, rm, 1) or (0, 0.0, 0.0)
    assert best == 20 and abs(fall - 0.3) < 1e-9 and abs(rm_change - 2.0) < 1e-9
    (monitor,) = build_monitors(["gold_peak"])
    history = [
        StepRecord(s, {"gold/utility": g, "objective/rm_score": r})
        for s, (g, r) in enumerate(zip(gold, rm, strict=True))
    ]
    alerts = monitor(MonitorInput(history, {}, []))
    assert [(a.monitor, a.severity, a.condition) for a in alerts] == [
        ("gold_peak", "critical", "overoptimization")
    ]
    assert alerts[0].evidence["peak_step"] in range(18, 24)
    # The same gold fall with the RM falling too is not hacking: the policy just got worse.
    falling_rm = [
        StepRecord(r.step, {**r.metrics, "objective/rm_score": -r.metrics["objective/rm_score"]})
        for r in history
    ]
    assert monitor(MonitorInput(falling_rm, {}, [])) == []
    # Gold still near its peak: quiet.
    rising = [
        StepRecord(s, {"gold/utility": 0.3 + 0.01 * s, "objective/rm_score": 0.1 * s}) for s in range(41)
    ]
    assert monitor(MonitorInput(rising, {}, [])) == []
