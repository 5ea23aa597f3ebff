"""Reward-model metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tether.reward import metrics as m


def test_accuracy_is_strict_a_tie_counts_wrong() -> None:
    chosen = np.array([2.0, 1.0, 0.5, -1.0])
    rejected = np.array([1.0, 1.0, 0.7, -3.0])
    assert m.correct_pairs(chosen, rejected).tolist() == [True, False, False, True]
    assert m.pairwise_accuracy(chosen, rejected) == 0.5
    assert math.isnan(m.pairwise_accuracy(np.array([]), np.array([])))


def test_bootstrap_interval_by_hand() -> None:
    # A constant sample has no spread.
    assert m.bootstrap_interval(np.array([0.7, 0.7, 0.7])) == pytest.approx((0.7, 0.7))
    # Resampling [0, 1] gives means 0, 0.5, 1 with probability 1/4, 1/2, 1/4, so the 2.5% and 97.5%
    # percentiles are 0 and 1.
    assert m.bootstrap_interval(np.array([0.0, 1.0])) == (0.0, 1.0)
    low, high = m.bootstrap_interval(np.array([0.0, 1.0] * 50), seed=3)
    assert m.bootstrap_interval(np.array([0.0, 1.0] * 50), seed=3) == (low, high)  # seeded
    # Normal approximation: 0.5 ± 1.96 * sqrt(0.25 / 100) = 0.5 ± 0.098. With 1,000 resamples each
    # percentile is off it by a Monte Carlo sd of ~0.005 (over 200 seeds), so 0.03 is 6 of them.
    assert low == pytest.approx(0.402, abs=0.03) and high == pytest.approx(0.598, abs=0.03)
    assert all(math.isnan(v) for v in m.bootstrap_interval(np.array([])))


def test_bt_probability_and_its_extremes() -> None:
    assert m.bt_probability(np.array([math.log(3)]), np.array([0.0]))[0] == pytest.approx(0.75)
    assert m.bt_probability(np.array([0.0]), np.array([math.log(3)]))[0] == pytest.approx(0.25)
    with np.errstate(over="raise"):
        extreme = m.bt_probability(np.array([1000.0, -1000.0]), np.array([0.0, 0.0]))
    assert extreme.tolist() == [1.0, 0.0]


def test_ece_brier_and_reliability_bins_by_hand() -> None:
    probs = np.array([0.15, 0.25, 0.85, 0.95])
    outcomes = np.array([0, 1, 1, 1])
    # Ten bins: one point per bin, gaps 0.15, 0.75, 0.15, 0.05.
    assert m.expected_calibration_error(probs, outcomes) == pytest.approx(1.1 / 4)
    # Two bins: [0, .5) has mean .2 and observed .5; [.5, 1] has mean .9 and observed 1.
    assert m.expected_calibration_error(probs, outcomes, n_bins=2) == pytest.approx(0.5 * 0.3 + 0.5 * 0.1)
    assert m.brier_score(probs, outcomes) == pytest.approx((0.0225 + 0.5625 + 0.0225 + 0.0025) / 4)
    bins = m.reliability_bins(probs, outcomes, n_bins=2)
    assert [(b.lower, b.upper, b.count) for b in bins] == [(0.0, 0.5, 2), (0.5, 1.0, 2)]
    assert bins[0].mean_probability == pytest.approx(0.2) and bins[0].observed == 0.5
    # Probability 1.0 belongs to the last bin; empty bins carry None.
    edge = m.reliability_bins(np.array([1.0]), np.array([1]), n_bins=4)
    assert [b.count for b in edge] == [0, 0, 0, 1] and edge[0].observed is None
    assert math.isnan(m.expected_calibration_error(np.array([]), np.array([])))


def test_pair_calibration_points_count_each_pair_in_both_orders() -> None:
    probs, outcomes = m.pair_calibration_points(np.array([math.log(3)]), np.array([0.0]))
    assert probs.tolist() == pytest.approx([0.75, 0.25]) and outcomes.tolist() == [1, 0]
    # A model that scores both sides the same says 0.5 and is perfectly calibrated.
    probs, outcomes = m.pair_calibration_points(np.zeros(3), np.zeros(3))
    assert m.expected_calibration_error(probs, outcomes) == 0.0
    assert m.brier_score(probs, outcomes) == 0.25


def test_baselines_by_hand() -> None:
    # Longer chosen: right; longer rejected: wrong; equal length: half.
    assert m.pick_longer_accuracy(np.array([3, 1, 2]), np.array([1, 3, 2])) == 0.5
    assert m.pick_a_accuracy(np.array([True, True, False, True])) == 0.75
    positions = m.seeded_positions(10_000, seed=1)
    assert positions.tolist() == m.seeded_positions(10_000, seed=1).tolist()
    assert m.pick_a_accuracy(positions) == pytest.approx(0.5, abs=0.02)  # 10,000 coins: SE 0.005, 4 of them


def test_pearson_and_word_count_by_hand() -> None:
    # dx = (-1, 0, 1), dy = (-7/3, -1/3, 8/3): r = 5 / sqrt(2 * 114 / 9) = 15 / sqrt(228).
    assert m.pearson(np.array([1, 2, 3]), np.array([2, 4, 7])) == pytest.approx(15 / math.sqrt(228))
    assert m.pearson(np.array([1, 2, 3]), np.array([3, 2, 1])) == pytest.approx(-1.0)
    assert m.pearson(np.array([1, 1, 1]), np.array([1, 2, 3])) is None
    assert m.pearson(np.array([1]), np.array([2])) is None
    assert m.word_count("the answer is 12 .") == 4
    assert m.word_count("Hello, world! - ok") == 3


def test_most_confident_wrong_per_group() -> None:
    chosen = np.array([0.0, 1.0, 0.0, 0.0, 5.0, -2.0])
    rejected = np.array([3.0, 0.0, 1.0, 0.0, 6.0, 2.0])
    groups = ["a", "a", "a", "b", "b", "a"]
    # Wrong pairs: 0 (by 3), 2 (by 1), 3 (a tie, by 0), 4 (by 1), 5 (by 4).
    assert m.most_confident_wrong(chosen, rejected, groups, k=2) == {"a": [5, 0], "b": [4, 3]}
    assert m.most_confident_wrong(np.array([1.0]), np.array([0.0]), ["a"]) == {}
