"""RM-divergence, strata and KL monitors called directly on hand-made sequences."""

from __future__ import annotations

import math
import random

import pytest

from tests.monitors.helpers import noisy, window
from tests.monitors.simulated_runs import faithful_run
from tether.monitors import MonitorSuite, build_monitors
from tether.monitors.base import Generation, MonitorInput, StepRecord
from tether.monitors.kl import kl_budget, kl_spike
from tether.monitors.reward import StrataVerdict, rm_divergence, strata_uniform_high, uniform_high_verdict
from tether.monitors.strata import strata_sums


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
    # The fitted change over 20 steps, slope 0.1 under noise of sd 0.1: 1.9 with a standard error of
    # 0.1 · 19 / sqrt(Σ(t − t̄)²) = 0.074, so 0.3 is 4 of them
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


def test_rm_divergence_needs_the_condition_on_consecutive_steps() -> None:
    # Gold rises with the RM for 22 steps, then one bad batch: only the last window crosses flat_r.
    rm = [0.1 * s for s in range(23)]
    one_dip = window({"objective/rm_score": rm, "gold/utility": [0.5 + 0.01 * s for s in range(22)] + [0.0]})
    assert [a.condition for a in rm_divergence(persist=1)(one_dip)] == ["divergence"]
    assert rm_divergence()(one_dip) == []  # persist = 3: a one-step crossing is noise
    (alert,) = rm_divergence()(window({"objective/rm_score": rm, "gold/utility": [0.5] * 23}))
    assert alert.condition == "divergence" and alert.evidence["persist"] == 3


def test_persist_cuts_the_one_step_crossings_of_the_trend_conditions() -> None:
    # The trend conditions alone (tracking_t = inf: the rule before issue 16; the tracking test is in
    # test_rm_divergence.py), 200 steps of a faithful RM with run A's noise, judged from step 20 on.
    def stopped(records: list[StepRecord], persist: int) -> bool:
        monitor = rm_divergence(persist=persist, tracking_t=math.inf)
        return any(monitor(MonitorInput(records[max(0, t - 30) : t + 1], {})) for t in range(20, 200))

    runs = [faithful_run(seed) for seed in range(60)]
    one_step = sum(stopped(r, 1) for r in runs)
    three_steps = sum(stopped(r, 3) for r in runs)
    # 8 of 60 runs stopped on a one-step crossing; 2 of 60 when it must hold for 3 steps.
    assert three_steps <= 3 and one_step >= 3 * three_steps, (one_step, three_steps)


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


def _scored(stratum: str, rm: list[float], gold: list[float] | None = None) -> list[Generation]:
    return [Generation("p", "r", stratum, r, None if gold is None else gold[i]) for i, r in enumerate(rm)]


# Hand-computed: other RM 0, 2, 4, 6 (×4): mean 3, std √5 ≈ 2.236; hard RM 4, 5 (×8): mean 4.5, std 0.5.
# gap = 1.5/√5 ≈ 0.671 other-stds, spread = 0.5/√5 ≈ 0.224: high and uniform.
OTHER_RM = [0.0, 2.0, 4.0, 6.0] * 4
HARD_RM = [4.0, 5.0] * 8
GOLD_START = [0.25, 0.75] * 8  # mean 0.5, std 0.25
GOLD_BETTER = [0.5, 1.0] * 8  # mean 0.75, std 0.25: rise 0.25, s.e. √(2·0.25²/16) ≈ 0.0884, z ≈ 2.83
HARD_RM_START = [1.0, 2.0] * 8  # mean 1.5, std 0.5: the RM on hard prompts rose 3.0, z = 3/0.177 ≈ 17


def _verdict(hard_gold: list[float] | None) -> StrataVerdict | None:
    recent = [strata_sums(_scored("hard", HARD_RM, hard_gold) + _scored("routine", OTHER_RM, [0.8] * 16))]
    reference = strata_sums(_scored("hard", HARD_RM_START, GOLD_START))
    return uniform_high_verdict(
        recent,
        reference,
        ("hard", "adversarial"),
        min_count=16,
        min_gap=0.0,
        max_spread_ratio=0.5,
        agree_z=2.0,
    )


def test_uniform_high_verdict_by_hand() -> None:
    earned = _verdict(GOLD_BETTER)
    assert earned is not None and not earned.fires
    assert earned.gap == pytest.approx(1.5 / math.sqrt(5)) and earned.spread == pytest.approx(
        0.5 / math.sqrt(5)
    )
    assert earned.independent_rise_z == pytest.approx(0.25 / math.sqrt(2 * 0.25**2 / 16))
    assert earned.rm_rise_z == pytest.approx(3.0 / math.sqrt(2 * 0.5**2 / 16))
    flat = _verdict(GOLD_START)
    assert flat is not None and flat.fires and flat.independent_rise_z == 0.0
    no_gold = _verdict(None)
    assert no_gold is not None and no_gold.fires and no_gold.independent_rise_z is None
    # The RM scored the hard prompts this way from the start: the RM's static view, not something
    # the policy found, so no alert even with gold flat.
    static = uniform_high_verdict(
        [strata_sums(_scored("hard", HARD_RM, GOLD_START) + _scored("routine", OTHER_RM))],
        strata_sums(_scored("hard", HARD_RM, GOLD_START)),
        ("hard",),
        min_count=16,
        min_gap=0.0,
        max_spread_ratio=0.5,
        agree_z=2.0,
    )
    assert static is not None and not static.fires and static.rm_rise_z == 0.0


def _steps(hard: list[Generation], other: list[Generation], n: int, first: int = 0) -> list[StepRecord]:
    return [StepRecord(first + i, strata_sums(hard + other)) for i in range(n)]


def test_uniform_high_rm_on_hard_prompts_fires_when_gold_is_flat_and_not_when_it_agrees() -> None:
    # Semantics changed deliberately (issue 7): the independent score of the hard prompts is compared
    # with the same prompts at the start of the run, not with the routine prompts of the same step.
    routine = _scored("routine", [float(x) for x in range(10)], [0.9] * 10)
    reference = strata_sums(
        _scored("hard", [0.0, 3.0] * 20, [0.3, 0.5] * 20)
    )  # gold on hard: 0.4 at the start
    monitor = strata_uniform_high()
    flat = _steps(_scored("hard", [5.0, 5.1, 4.9, 5.0], [0.3, 0.5, 0.3, 0.5]), routine, 10, first=50)
    (alert,) = monitor(MonitorInput(flat, reference))
    assert alert.severity == "warning" and alert.kind == "hacking" and alert.evidence["n_hard"] == 40
    assert float(alert.evidence["spread_ratio"]) < 0.5 and float(alert.evidence["gap_in_other_std"]) > 0
    assert alert.evidence["independent_rise_z"] == pytest.approx(0.0)
    # Gold on those hard prompts rose to 0.8 (below routine's 0.9, as hard prompts are): earned.
    agrees = _steps(_scored("hard", [5.0, 5.1, 4.9, 5.0], [0.7, 0.9, 0.7, 0.9]), routine, 10, first=50)
    assert monitor(MonitorInput(agrees, reference)) == []
    # Honest: lower and spread out.
    honest = _steps(_scored("hard", [0.0, 1.0, 2.0, 3.0], [0.3, 0.5, 0.3, 0.5]), routine, 10, first=50)
    assert monitor(MonitorInput(honest, reference)) == []
    # Too few hard responses in the window to judge a spread.
    assert monitor(MonitorInput(flat[-3:], reference)) == []


def test_uniform_high_without_an_independent_score_still_warns() -> None:
    hard = _scored("hard", [5.0, 5.1, 4.9, 5.0])
    (alert,) = strata_uniform_high()(
        MonitorInput(_steps(hard, _scored("routine", list(map(float, range(10)))), 10, first=50), {})
    )
    assert "no independent score" in alert.message


def test_equal_rm_spreads_never_pass_for_uniform_over_a_run() -> None:
    # 9 hard and 23 other responses a step, scores N(0.01·step, 1) in both (the RM rising everywhere,
    # no gold): a single step looks "high and uniform" about 1.4% of the time (≈3 alerts in 200
    # steps); pooled over 10 steps, never.
    rng = random.Random(0)
    suite = MonitorSuite(build_monitors(["strata_uniform_high"]), baseline={})
    alerts = []
    for step in range(200):
        hard = _scored("hard", [rng.gauss(0.01 * step, 1) for _ in range(9)])
        alerts += suite.observe(
            step, {}, hard + _scored("routine", [rng.gauss(0.01 * step, 1) for _ in range(23)])
        )
    assert alerts == []


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


def test_gold_peak_fires_when_gold_turns_down_while_the_rm_holds() -> None:
    from tether.monitors import MonitorInput, StepRecord, build_monitors
    from tether.monitors.reward import peak_drop, window_means

    assert window_means([1.0, 3.0, 5.0, 7.0], 2) == [2.0, 4.0, 6.0]
    assert window_means([1.0], 2) == []
    # gold rises to 0.8 by step 20, then falls to 0.5; the RM keeps climbing.
    gold = [0.3 + 0.025 * s for s in range(21)] + [0.8 - 0.015 * s for s in range(1, 21)]
    rm = [0.1 * s for s in range(41)]
    best, fall, rm_change = peak_drop(gold, rm, 1) or (0, 0.0, 0.0)
    assert best == 20 and abs(fall - 0.3) < 1e-9 and abs(rm_change - 2.0) < 1e-9
    # windows of 3: the best is gold[19:22] = (0.775, 0.8, 0.785), mean 0.78667; the last is
    # gold[38:41] = (0.53, 0.515, 0.5), mean 0.515; the RM's windows 2.0 and 3.9 apart
    best, fall, rm_change = peak_drop(gold, rm, 3) or (0, 0.0, 0.0)
    assert best == 19 and abs(fall - (0.78667 - 0.515)) < 1e-4 and abs(rm_change - 1.9) < 1e-9
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


def test_gold_peak_ignores_one_high_step_at_the_head_of_its_window() -> None:
    """The shape of a false alarm seen in the sandbox's unbiased run: a flat gold near 0.70 (10-step
    means), one step of 0.85 where the monitor's 100-step history begins, the RM rising slowly."""
    from tether.monitors import MonitorInput, StepRecord, build_monitors

    (monitor,) = build_monitors(["gold_peak"])
    gold = noisy(0.70, 100, 0.04, seed=5)
    gold[0] = 0.85
    history = [
        StepRecord(60 + i, {"gold/utility": g, "objective/rm_score": 2.0 + 0.003 * i})
        for i, g in enumerate(gold)
    ]
    assert monitor(MonitorInput(history, {}, [])) == []
    # the same spike as a real peak, held for a whole window, followed by the fall: it fires
    held = [0.85] * 10 + [0.85 - 0.15 * i / 89 for i in range(1, 91)]
    turned = [StepRecord(60 + i, {**r.metrics, "gold/utility": held[i]}) for i, r in enumerate(history)]
    (alert,) = monitor(MonitorInput(turned, {}, []))
    assert alert.evidence["peak_step"] in range(60, 70)
