"""Calibration decisions, hand-computed."""

from __future__ import annotations

import pytest

from tether.labeling.calibration import (
    HIDDEN_MIN,
    calibration_decision,
    calibration_order,
    hidden_anchor_decision,
    hidden_anchor_due,
    presentation_swapped,
    rolling_disagreement,
    round_anchors,
)


@pytest.mark.parametrize(
    ("round_", "wrong", "status", "next_round"),
    [
        (1, 5, "active", 1),  # 5/20 = 25% is not above 25%
        (1, 6, "needs_retraining", 2),  # 30% > 25%: one retry
        (2, 6, "excluded", 2),  # failed the retry
        (2, 0, "active", 2),
    ],
)
def test_calibration_decision(round_: int, wrong: int, status: str, next_round: int) -> None:
    decision = calibration_decision(round_=round_, wrong=wrong, total=20, threshold=0.25)
    assert (decision.status, decision.next_round) == (status, next_round)
    assert f"{wrong} of 20 clear-cut anchors" in decision.reason


def test_excluded_reason_says_labels_are_kept() -> None:
    assert "kept for analysis" in calibration_decision(round_=2, wrong=10, total=20, threshold=0.25).reason


def test_rolling_disagreement_window() -> None:
    assert rolling_disagreement([True] * (HIDDEN_MIN - 1)) is None
    assert rolling_disagreement([False, False] + [True] * 8) == pytest.approx(0.2)
    # Only the last 10 count: 5 early mistakes fall out of the window.
    assert rolling_disagreement([False] * 5 + [True] * 10) == 0.0


def test_hidden_anchor_decision_moves_rater_out_of_training_data() -> None:
    assert hidden_anchor_decision([True] * 7 + [False] * 3, threshold=0.25, round_=1) is not None
    assert hidden_anchor_decision([True] * 8 + [False] * 2, threshold=0.25, round_=1) is None
    decision = hidden_anchor_decision([False] * 6, threshold=0.25, round_=1)
    assert decision is not None
    assert (decision.status, decision.next_round) == ("needs_retraining", 2)


def test_orders_are_fresh_per_round_and_reproducible() -> None:
    keys = [f"k{i}" for i in range(20)]
    first = calibration_order(keys, rater_id=1, round_=1, seed=0)
    assert sorted(first) == sorted(keys)
    assert first == calibration_order(keys, rater_id=1, round_=1, seed=0)
    assert first != calibration_order(keys, rater_id=1, round_=2, seed=0)


def test_random_draws_hit_their_rates() -> None:
    swaps = [presentation_swapped(task_id=t, rater_id=3, round_=0, seed=0) for t in range(4000)]
    # 4,000 draws each: standard errors 0.0079 at 0.5 and 0.0034 at 0.05, so the old bounds (±0.03 and
    # ±0.01) were 3.8 and 2.9 of them; these are 5 (±0.04 and ±0.017)
    assert 0.46 < sum(swaps) / len(swaps) < 0.54
    hidden = [hidden_anchor_due(rater_id=3, judged=j, rate=0.05, seed=0) for j in range(4000)]
    assert 0.033 < sum(hidden) / len(hidden) < 0.067


def test_recalibration_rounds_draw_unseen_anchors_and_keep_the_old_order_without_them() -> None:
    keys = [f"k{i}" for i in range(40)]
    calibration = keys[:20]
    first = calibration_order(calibration, rater_id=3, round_=1, seed=0)
    # The retry after a failed first round, and a recalibration with nothing unseen left, are
    # the calibration set in the order calibration rounds always had (the sandbox's case).
    for answered, recal in ((set(), False), (set(keys), True)):
        again = round_anchors(calibration, keys, answered, rater_id=3, round_=2, seed=0, recalibration=recal)
        assert again == calibration_order(calibration, rater_id=3, round_=2, seed=0) != first
    fresh = round_anchors(
        calibration, keys, set(calibration), rater_id=3, round_=2, seed=0, recalibration=True
    )
    assert sorted(fresh) == sorted(keys[20:])  # 20 unseen: the round is all of them
    answered = set(calibration) | {"k20", "k21", "k22"}
    mixed = round_anchors(calibration, keys, answered, rater_id=3, round_=2, seed=0, recalibration=True)
    assert len(mixed) == 20 and set(keys[23:]) <= set(mixed)  # 17 unseen, topped up by 3
    assert len(set(mixed) & set(calibration)) == 3


def test_hidden_anchor_failures_beyond_max_recalibrations_exclude() -> None:
    failing = [False] * 6
    for failures, status in ((0, "needs_retraining"), (1, "needs_retraining"), (2, "excluded")):
        decision = hidden_anchor_decision(
            failing, threshold=0.25, round_=2, failures=failures, max_recalibrations=2
        )
        assert decision is not None and decision.status == status
    zero = hidden_anchor_decision(failing, threshold=0.25, round_=1, failures=0, max_recalibrations=0)
    assert zero is not None and zero.status == "excluded"
