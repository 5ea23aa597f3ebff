"""KL controllers, the budget and the spike detector, with hand values."""

from __future__ import annotations

import math
import random

import pytest

from tether.rl.kl_control import (
    AdaptiveKLController,
    FixedKLController,
    KLBudget,
    KLController,
    KLSpikeDetector,
    running_kl,
    spike_check,
)
from tether.spec.model import RLPolicy


def test_fixed_controller_never_moves() -> None:
    ctl: KLController = FixedKLController(0.05)
    ctl.update(100.0, 512)
    assert ctl.value == 0.05
    assert ctl.state_dict() == {"value": 0.05}


def test_adaptive_controller_by_hand() -> None:
    ctl = AdaptiveKLController(init_beta=0.1, target=5.0, horizon=1000)
    ctl.update(current_kl=5.5, n_steps=100)  # e = 0.1 -> β·(1 + 0.1·0.1) = 0.101
    assert ctl.value == pytest.approx(0.101)
    ctl.update(current_kl=50.0, n_steps=100)  # e clipped to 0.2 -> ·1.02
    assert ctl.value == pytest.approx(0.101 * 1.02)
    ctl.update(current_kl=0.0, n_steps=500)  # e clipped to −0.2 -> ·0.9
    assert ctl.value == pytest.approx(0.101 * 1.02 * 0.9)
    ctl.update(current_kl=5.0, n_steps=500)  # on target: unchanged
    assert ctl.value == pytest.approx(0.101 * 1.02 * 0.9)
    with pytest.raises(ValueError, match="finite"):
        ctl.update(math.nan, 1)


def test_adaptive_controller_targets_the_spec_budget_and_resumes_exactly() -> None:
    ctl = AdaptiveKLController.from_spec(RLPolicy(kl_budget_nats=4.0), init_beta=0.2, horizon=100)
    assert ctl.target == 4.0
    ctl.update(6.0, 10)
    resumed = AdaptiveKLController(init_beta=1.0, target=1.0, horizon=1)
    resumed.load_state_dict(ctl.state_dict())
    for kl in (3.0, 7.0, 4.5):
        ctl.update(kl, 10)
        resumed.update(kl, 10)
    assert resumed.value == ctl.value and resumed.state_dict() == ctl.state_dict()


def test_running_kl_is_the_trailing_mean() -> None:
    assert running_kl([1.0, 2.0, 3.0, 4.0], window=2) == 3.5
    assert running_kl([1.0, 2.0], window=10) == 1.5
    assert math.isnan(running_kl([]))


def test_budget_verdicts() -> None:
    budget = KLBudget.from_spec(RLPolicy(kl_budget_nats=5.0, kl_budget_margin=0.2))
    assert budget.limit == pytest.approx(6.0)
    inside = budget.check(4.0)
    assert not inside.stop and not inside.over_budget
    over = budget.check(5.5)
    assert over.over_budget and not over.stop
    stop = budget.check(6.5)
    assert stop.stop and "exceeds the budget 5 nats" in stop.message and "limit 6.00" in stop.message
    assert not budget.check(math.nan).over_budget


def test_spike_detector_quiet_on_steady_noise_and_alerts_on_a_jump() -> None:
    rng = random.Random(0)
    detector = KLSpikeDetector(window=20, z_threshold=4.0)
    alerts = [detector.update(3.0 + rng.gauss(0, 0.1)) for _ in range(200)]
    assert all(a is None for a in alerts)
    spike = detector.update(6.0)
    assert spike is not None and spike.z_level > 4.0 and "jumped" in spike.message


def test_spike_detector_handles_a_flat_series_and_drops() -> None:
    assert spike_check([2.0] * 10, 2.01) is None  # std floored at 1% of the mean
    assert spike_check([2.0] * 10, 3.0) is not None
    assert spike_check([2.0] * 10, 0.5) is None  # a drop is not a spike
    assert spike_check([2.0] * 3, 9.0) is None  # too little history


def test_spike_detector_resumes_exactly() -> None:
    a = KLSpikeDetector(window=5, min_history=3)
    for kl in (1.0, 1.1, 0.9, 1.0):
        a.update(kl)
    b = KLSpikeDetector()
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == a.state_dict()
    assert (a.update(5.0) is None) == (b.update(5.0) is None) is False


def test_a_spike_must_also_rise_by_min_jump() -> None:
    from tether.rl.kl_control import spike_check

    quiet = [0.0, 0.001, 0.0, 0.002, 0.001, 0.0]
    assert spike_check(quiet, 0.08) is not None  # many sigmas above a near-zero spread
    assert spike_check(quiet, 0.08, min_jump=0.25) is None  # but a hundredth of the budget
    assert spike_check(quiet, 1.5, min_jump=0.25) is not None
