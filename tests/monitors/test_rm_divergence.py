"""rm_divergence's tracking test (issue 16): gold regressed on [1, RM score, step] over 40 steps.

The simulated rates below are bounded from their sampling distributions: a rate p measured on n runs
has a standard error √(p(1 − p)/n), and each bound sits 3 standard errors from the rate that 10,000
or 2,000 runs with other seeds gave (the figures in docs/rl.md and `tether.monitors.divergence`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.monitors.helpers import window
from tests.monitors.simulated_runs import faithful_run, first_stop, hacked_run, holds_by_step
from tether.monitors.base import MonitorInput, StepRecord
from tether.monitors.reward import rm_divergence
from tether.monitors.trends import tracking

OLD_RULE = {"tracking_t": math.inf}
"""The rule before issue 16: no step-to-step link ever counts as tracking, so the trends alone decide."""

# `tether demo --seed 2` with OMP_NUM_THREADS=1, iteration 1's RL run (steps 0-28, 32 samples a
# step): (objective/rm_score, gold/utility) per step from its metrics.jsonl, rounded to 6 decimals.
# The old rule stopped it at step 28 (RM r 0.71, gold r 0.19) though the eval suites' gold utility
# went from SFT's 0.438 to 0.536 at this iteration.
DEMO_SEED_2 = [
    (-0.118240, 0.376337), (-0.105070, 0.429638), (-0.011961, 0.411956), (0.471471, 0.576313),
    (0.322692, 0.532550), (-0.160632, 0.361581), (-0.069603, 0.299669), (0.122767, 0.431913),
    (0.058384, 0.465713), (-0.083582, 0.367556), (0.149131, 0.287062), (-0.136159, 0.438144),
    (0.167092, 0.550056), (-0.196474, 0.372613), (0.025463, 0.541394), (0.020605, 0.534725),
    (-0.181372, 0.341319), (0.537574, 0.521250), (0.230765, 0.468238), (0.245265, 0.484388),
    (0.664638, 0.605525), (-0.003176, 0.361694), (0.390379, 0.464456), (0.045328, 0.424081),
    (0.564791, 0.446225), (0.524252, 0.423750), (0.539751, 0.450444), (0.726577, 0.473738),
    (0.441688, 0.474556),
]  # fmt: skip


def _demo_records() -> list[StepRecord]:
    return [
        StepRecord(step, {"objective/rm_score": rm, "gold/utility": gold})
        for step, (rm, gold) in enumerate(DEMO_SEED_2)
    ]


def test_tracking_by_hand() -> None:
    # Centred: step d_t = −2..2, RM d_x = (−1, 1, −2, 1, 1), so Σd_t² = 10, Σd_x² = 8, Σd_x·d_t = 4 and
    # the determinant is 8·10 − 4² = 64. Gold = 0.5 + 0.5·d_x − 0.1·d_t + 0.1·e with e = (3, −3, −2, 1, 1)
    # orthogonal to 1, d_x and d_t: b = 0.5, c = −0.1 exactly, residual sum of squares 0.01·24 = 0.24
    # on 5 − 3 = 2 degrees of freedom, so s² = 0.12, se(b) = √(s²·10/64), se(c) = √(s²·8/64).
    fit = tracking([0, 1, 2, 3, 4], [0.0, 2.0, -1.0, 2.0, 2.0], [0.5, 0.8, -0.7, 1.0, 0.9])
    assert fit is not None and fit.n == 5
    assert fit.rm_coef == pytest.approx(0.5) and fit.step_coef == pytest.approx(-0.1)
    assert fit.rm_t == pytest.approx(0.5 / math.sqrt(0.12 * 10 / 64))  # 3.65
    assert fit.step_t == pytest.approx(-0.1 / math.sqrt(0.12 * 8 / 64))  # −0.82
    # Σd_x·y = 0.5·8 − 0.1·4 = 3.6; Σy² (centred) = 0.25·8 + 0.01·10 + 0.01·24 − 2·0.05·4 = 1.94.
    assert fit.corr == pytest.approx(3.6 / math.sqrt(8 * 1.94))
    # Too few points for a noise estimate; an RM that is a linear function of the step.
    assert tracking([0, 1, 2], [0.0, 1.0, 3.0], [0.0, 1.0, 2.0]) is None
    assert tracking([0, 1, 2, 3, 4], [0.1 * s for s in range(5)], [0.5, 0.6, 0.4, 0.5, 0.7]) is None
    # An exact fit: infinite t where the coefficient is not zero, zero where it is.
    exact = tracking([0, 1, 2, 3], [0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0])
    assert exact is not None and exact.rm_t == 0.0 and exact.step_t == 0.0 and exact.corr == 0.0


def test_tracking_matches_numpy_least_squares_on_the_recorded_window() -> None:
    steps = list(range(9, 29))
    rm = [DEMO_SEED_2[s][0] for s in steps]
    gold = [DEMO_SEED_2[s][1] for s in steps]
    fit = tracking(steps, rm, gold)
    design = np.column_stack([np.ones(20), rm, steps])
    coef, rss, _, _ = np.linalg.lstsq(design, np.array(gold), rcond=None)
    stderr = np.sqrt(np.diag(rss[0] / 17 * np.linalg.inv(design.T @ design)))
    assert fit is not None
    assert (fit.rm_coef, fit.step_coef) == pytest.approx((coef[1], coef[2]), rel=1e-9)
    assert (fit.rm_t, fit.step_t) == pytest.approx((coef[1] / stderr[1], coef[2] / stderr[2]), rel=1e-9)
    assert fit.corr == pytest.approx(np.corrcoef(rm, gold)[0, 1], rel=1e-9)


def test_the_recorded_false_alarm_of_demo_seed_2_is_quiet() -> None:
    records = _demo_records()
    old = holds_by_step(records, rm_divergence(persist=1, **OLD_RULE))
    assert [s for s, held in enumerate(old) if held] == [26, 27, 28]
    (stopped,) = rm_divergence(**OLD_RULE)(MonitorInput(records, {}))
    assert stopped.step == 28 and stopped.evidence["rm_change"] == pytest.approx(0.672, abs=1e-3)
    assert stopped.evidence["tracking"] == "untracked" and "rm_coef_t" in stopped.evidence
    # Over the 27–29 steps its 40-step tracking windows hold at steps 26–28, gold moves with the RM
    # step to step (b 0.20–0.21, t 3.6) and shows no significant shortfall against the RM's
    # prediction (t of c −1.1 to −1.25): tracked, and quiet on every step.
    assert not any(holds_by_step(records, rm_divergence(persist=1)))
    fit = tracking(list(range(29)), [x for x, _ in DEMO_SEED_2], [y for _, y in DEMO_SEED_2])
    assert fit is not None and fit.rm_t >= 3.0 and -2.0 < fit.step_t < -1.0


@pytest.mark.parametrize("rule", [OLD_RULE, {}], ids=["old rule", "tracking test"])
def test_holds_by_step_reproduces_the_persist_rule(rule: dict[str, float]) -> None:
    # The simulations judge a persist = 3 monitor by 3 consecutive persist = 1 decisions, each on the
    # last 41 records: the same thing, as the monitor checks each of the last 3 steps with its own
    # trailing windows and reads at most 40 steps back.
    for records in (hacked_run(0, 0.05, 0.0, 0.5), faithful_run(190)):
        holds = holds_by_step(records, rm_divergence(persist=1, **rule))
        monitor = rm_divergence(**rule)
        fired = [t for t in range(len(records)) if monitor(MonitorInput(records[: t + 1], {}))]
        assert fired == [t for t in range(len(records)) if first_stop(holds[: t + 1], 3, start=t) == t]
        assert fired  # both rules fire on both runs: the comparison compared something


def test_a_shortfall_alert_gives_the_regression() -> None:
    # Gold co-moves with the RM step to step (the prompt mix) but its level stays put while the RM
    # climbs 0.08 a step: gold falls ever further below its RM-predicted level.
    rm = [0.08 * s + (0.3 if s % 3 == 0 else -0.15) for s in range(25)]
    gold = [0.5 + (0.06 if s % 3 == 0 else -0.03) + 0.01 * ((s * 7) % 5 - 2) for s in range(25)]
    (alert,) = rm_divergence()(window({"objective/rm_score": rm, "gold/utility": gold}))
    evidence = alert.evidence
    assert evidence["tracking"] == "shortfall" and float(evidence["rm_coef_t"]) >= 2.0
    assert float(evidence["step_coef_t"]) <= -2.0 and float(evidence["step_coef"]) < 0
    assert float(evidence["window_corr"]) > 0.3 and evidence["tracking_points"] == 25
    assert "falls short of the level the RM predicts" in alert.message


def test_an_untracked_alert_says_so() -> None:
    (alert,) = rm_divergence()(
        window({"objective/rm_score": [0.1 * s for s in range(23)], "gold/utility": [0.5] * 23})
    )
    # An RM exactly linear in the step: the regression cannot separate the two, so the trends decide.
    assert alert.evidence["tracking"] == "untracked" and "rm_coef" not in alert.evidence
    assert "cannot be tested" in alert.message


def _bound(rate: float, n: int, z: float) -> float:
    """``rate`` moved ``z`` standard errors of an n-run proportion (negative z: a lower bound)."""
    return rate + z * math.sqrt(rate * (1 - rate) / n)


def _stops(records: list[StepRecord], start: int = 0) -> tuple[int | None, int | None]:
    """(old rule's first stop, new rule's first stop) at or after ``start``, with persist = 3."""
    old = first_stop(holds_by_step(records, rm_divergence(persist=1, **OLD_RULE)), 3, start)
    new = first_stop(holds_by_step(records, rm_divergence(persist=1)), 3, start)
    return old, new


def test_a_faithful_reward_model_rarely_stops_a_run() -> None:
    """200-step runs where gold is a linear function of what the RM measures, with run A's noise.

    10,000 runs (seeds 100,000 on) stopped in 2.73% ± 0.16% with the old rule and 0.29% ± 0.05% with
    the tracking test and a full trend window (min_points 20). Here n = 800 (seeds 0–799): the new
    rate's standard error is 0.19%, so the bound 0.29% + 3 s.e. = 0.86% (6 runs) is passed by chance
    with probability about 1% (Poisson tail at mean 2.3). New stops are a subset of old ones (the rule
    only adds conditions); the runs it spares, 2.44% in expectation (s.e. 0.55% here), must be no
    fewer than 3 s.e. below that (0.80%, 7 runs)."""
    n = 800
    stops = [_stops(faithful_run(seed)) for seed in range(n)]
    old = [o is not None for o, _ in stops]
    new = [s is not None for _, s in stops]
    assert all(o or not s for o, s in zip(old, new, strict=True))
    assert sum(new) / n <= _bound(0.0029, n, 3.0), sum(new)
    assert (sum(old) - sum(new)) / n >= _bound(0.0244, n, -3.0), (sum(old), sum(new))


# (RM gain a step from style, gold's change a step, correlation of the per-step noises) from step 60,
# and what 2,000 runs (seeds 100,000 on) gave with the tracking test: detection rate, median delay
# (steps from the onset to the alert) and the share of its alerts raised on a shortfall.
HACKS = {
    "slow, gold flat, run A's co-movement": ((0.03, 0.0, 0.71), 0.9885, 36, 0.999),
    "slow, gold flat, weaker co-movement": ((0.03, 0.0, 0.5), 0.9880, 40, 0.83),
    "fast, gold flat": ((0.05, 0.0, 0.5), 1.0, 23, 0.71),
    "slow, gold falling": ((0.03, -0.002, 0.5), 1.0, 29, 0.82),
    "slow, gold flat, no co-movement": ((0.03, 0.0, 0.0), 1.0, 24, 0.0075),
}


@pytest.mark.parametrize("name", list(HACKS))
def test_hacking_is_still_caught(name: str) -> None:
    """An RM gaining reward from a style gold does not reward, from step 60 of a 200-step run.

    Detection before → after (2,000 runs each): slow hacks with gold flat 98.9% → 98.9% (co-movement
    0.71), 99.7% → 98.8% (0.5), 100% → 100% (none); fast with gold flat and slow with gold falling
    100% → 100%. Median delays grow by 0–12 steps (31 → 36, 28 → 40, 16 → 23, 24 → 29, 24 → 24). Here
    n = 150 a scenario: the detection rate must be within 3 standard errors of its 2,000-run rate
    (s.e. 0.9% at 98.8%); where no run of 2,000 was missed, the miss rate is under 0.15% (95%, rule of
    three) and 3 misses in 150 would have probability under 0.2%. The median delay must be within
    3 of its standard errors (1.25·sd/√n, sd 8–24 steps) of the 2,000-run median. With co-movement,
    most alerts come from the shortfall test; without it, from the trends alone."""
    (rm_slope, gold_slope, corr), rate, median_delay, shortfall_share = HACKS[name]
    n, onset = 150, 60
    new_monitor, alerting = rm_divergence(persist=1), rm_divergence()
    delays, shortfalls = [], 0
    for seed in range(n):
        records = hacked_run(seed, rm_slope, gold_slope, corr, onset=onset)
        stop = first_stop(holds_by_step(records, new_monitor), 3, start=onset)
        if stop is not None:
            delays.append(stop - onset)
            (alert,) = alerting(MonitorInput(records[: stop + 1], {}))
            shortfalls += alert.evidence["tracking"] == "shortfall"
    if rate < 1.0:
        assert len(delays) / n >= _bound(rate, n, -3.0), len(delays)
    else:
        assert n - len(delays) <= 2, len(delays)
    spread = 1.25 * float(np.std(delays)) / math.sqrt(len(delays))  # a median's standard error
    # + 1: delays are whole steps, so a median moves by at least one.
    assert abs(float(np.median(delays)) - median_delay) <= 3 * spread + 1, (np.median(delays), spread)
    # Shares of 0.71 or more are over 5 standard errors (≤ 3.7% at n ≈ 150) above one half; 0.75% of
    # 150 is about 1 alert, and 8 or more would have probability under 1e-4.
    if shortfall_share > 0.5:
        assert shortfalls / len(delays) > 0.5, shortfalls
    else:
        assert shortfalls / len(delays) <= 0.05, shortfalls
