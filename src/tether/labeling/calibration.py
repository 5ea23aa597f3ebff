"""Rater calibration: pure decisions on expert-anchor results.

A new rater judges the calibration anchors first, with the expert verdict shown after each.
At or below the spec's maximum disagreement on clear-cut anchors the rater becomes `active`;
above it, `needs_retraining` with one retry, and then `excluded`. Active raters keep getting
hidden anchors; a rolling disagreement above the threshold, counted since the rater's latest
readmission, takes them out of training data until they pass a recalibration round, and after
`max_recalibrations` such cycles excludes them. A recalibration round draws anchors the rater has
not answered before (topped up from the calibration set when too few remain), and no round after
the first shows an expert verdict, so recalibration cannot be passed by replaying verdicts shown.
InstructGPT screened labelers at about 75% agreement with researchers; the default of at most
25% disagreement is the same bar.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

MAX_ROUNDS = 2
"""Calibration rounds before exclusion: the first try and one retry."""
HIDDEN_WINDOW = 10
"""Hidden anchors in the rolling disagreement window."""
HIDDEN_MIN = 6
"""Hidden anchors judged before the rolling check can act (fewer is too noisy to exclude on)."""


@dataclass(frozen=True)
class StatusDecision:
    """A rater's next status and the reason recorded with it."""

    status: str
    reason: str
    next_round: int


def _unit(*parts: object) -> float:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def calibration_order(keys: Sequence[str], *, rater_id: int, round_: int, seed: int) -> list[str]:
    """The anchors of one calibration round, in a fresh order for each rater and round."""
    order = list(keys)
    random.Random(int(_unit("calibration", seed, rater_id, round_) * 2**53)).shuffle(order)
    return order


def round_anchors(
    calibration: Sequence[str],
    clear_cut: Sequence[str],
    answered: Collection[str],
    *,
    rater_id: int,
    round_: int,
    seed: int,
    recalibration: bool,
) -> list[str]:
    """The anchors of calibration round `round_`, in the order shown: `len(calibration)` of them.

    A first round and its retry are the calibration set. A `recalibration` (the rater has been
    active before) takes the clear-cut anchors the rater has not `answered` yet (a random draw
    of the rater's own when there are more than enough), topped up from the calibration set when
    too few remain. Either way the round is shown in canonical order shuffled per rater and round,
    so a round of the calibration set alone is ordered exactly as calibration rounds always were.
    """
    if not recalibration:
        return calibration_order(calibration, rater_id=rater_id, round_=round_, seed=seed)
    size = len(calibration)
    unseen = sorted(
        (k for k in clear_cut if k not in answered),
        key=lambda k: _unit("recalibration", seed, rater_id, round_, k),
    )[:size]
    picked = set(unseen)
    picked |= set([k for k in calibration if k not in picked][: size - len(unseen)])
    canonical = [k for k in clear_cut if k in picked]
    return calibration_order(canonical, rater_id=rater_id, round_=round_, seed=seed)


def anchor_rank(key: str, rater_id: int, seed: int) -> float:
    """A rater's own random rank of an anchor, for drawing hidden anchors."""
    return _unit("hidden-order", seed, rater_id, key)


def presentation_swapped(*, task_id: int, rater_id: int, round_: int, seed: int) -> bool:
    """Whether the rater sees the task's B on the left: random per assignment, reproducible."""
    return _unit("swap", seed, task_id, rater_id, round_) < 0.5


def hidden_anchor_due(*, rater_id: int, judged: int, rate: float, seed: int) -> bool:
    """Whether the rater's next item is a hidden anchor (a seeded draw at the spec's rate)."""
    return _unit("hidden", seed, rater_id, judged) < rate


def calibration_decision(*, round_: int, wrong: int, total: int, threshold: float) -> StatusDecision:
    """Decide after a finished calibration round of `total` clear-cut anchors."""
    if total == 0:
        return StatusDecision("active", f"calibration round {round_}: no clear-cut anchors to grade", round_)
    rate = wrong / total
    summary = (
        f"calibration round {round_}: disagreed with the experts on {wrong} of {total} clear-cut anchors "
        f"({rate:.0%})"
    )
    if rate <= threshold:
        return StatusDecision("active", f"{summary}, within the {threshold:.0%} limit", round_)
    if round_ < MAX_ROUNDS:
        return StatusDecision(
            "needs_retraining",
            f"{summary}, above {threshold:.0%}; one retry on a fresh anchor ordering",
            round_ + 1,
        )
    return StatusDecision(
        "excluded", f"{summary}, above {threshold:.0%} after retry; labels kept for analysis only", round_
    )


def rolling_disagreement(correct: Sequence[bool], *, window: int = HIDDEN_WINDOW) -> float | None:
    """Disagreement over the last `window` hidden anchors; None until HIDDEN_MIN are judged."""
    recent = list(correct)[-window:]
    if len(recent) < HIDDEN_MIN:
        return None
    return sum(not c for c in recent) / len(recent)


def hidden_anchor_decision(
    correct: Sequence[bool],
    *,
    threshold: float,
    round_: int,
    failures: int = 0,
    max_recalibrations: int = 2,
) -> StatusDecision | None:
    """Move an active rater out of training data when hidden-anchor disagreement drifts up.

    `correct` holds the hidden anchors judged since the rater's latest readmission; `failures`
    counts the rater's earlier failed windows. Up to `max_recalibrations` failures send the rater
    to recalibration; the next one excludes them.
    """
    rate = rolling_disagreement(correct)
    if rate is None or rate <= threshold:
        return None
    n = min(len(correct), HIDDEN_WINDOW)
    summary = f"rolling disagreement on the last {n} hidden anchors is {rate:.0%}, above {threshold:.0%}"
    if failures >= max_recalibrations:
        return StatusDecision(
            "excluded",
            f"{summary}, hidden-anchor failure {failures + 1} after {failures} recalibration(s) "
            f"(max_recalibrations {max_recalibrations}); labels kept for analysis only",
            round_,
        )
    return StatusDecision(
        "needs_retraining",
        f"{summary}; out of training data until recalibrated "
        f"(recalibration {failures + 1} of at most {max_recalibrations})",
        round_ + 1,
    )
