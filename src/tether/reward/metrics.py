"""Reward-model metrics: pure numpy functions over rewards, each small enough to check by hand.

A pair is (r_c, r_r): the rewards of the chosen and the rejected response. Accuracy is strict, as in
RewardBench: a pair counts as correct only when r_c > r_r, so a model that scores everything the same
gets 0, not 0.5. Calibration reads σ(r_c − r_r) as the Bradley–Terry probability that the chosen
response is preferred.

    >>> pairwise_accuracy(np.array([1.0, 0.0, 2.0]), np.array([0.0, 0.0, 3.0]))
    0.3333333333333333
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

N_BINS: Final = 10
"""Equal-width probability bins of the ECE and the reliability diagram."""
N_RESAMPLES: Final = 1000
"""Bootstrap resamples behind every interval."""
LEVEL: Final = 0.95
"""Coverage of every interval."""


def correct_pairs(chosen: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """Per pair, whether the chosen response scored strictly higher (a tie is wrong)."""
    return np.asarray(chosen) > np.asarray(rejected)


def pairwise_accuracy(chosen: np.ndarray, rejected: np.ndarray) -> float:
    """Share of pairs with r_c > r_r; NaN for no pairs."""
    correct = correct_pairs(chosen, rejected)
    return float(correct.mean()) if correct.size else float("nan")


def bootstrap_interval(
    values: np.ndarray, *, n_resamples: int = N_RESAMPLES, level: float = LEVEL, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (seeded); (NaN, NaN) when empty.

    >>> bootstrap_interval(np.array([1.0, 1.0, 1.0]))
    (1.0, 1.0)
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)  # (n_resamples,)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def bt_probability(r_a: np.ndarray, r_b: np.ndarray) -> np.ndarray:
    """Bradley–Terry probability that A beats B: σ(r_A − r_B), computed without overflow."""
    d = np.asarray(r_a, dtype=np.float64) - np.asarray(r_b, dtype=np.float64)
    e = np.exp(-np.abs(d))
    return np.where(d >= 0, 1 / (1 + e), e / (1 + e))


def pair_calibration_points(chosen: np.ndarray, rejected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, outcomes) with each pair in both orders: (σ(r_c − r_r), 1) and (σ(r_r − r_c), 0).

    With only the chosen-first order every outcome is 1, and the best "calibrated" model would be one
    that is always sure. Both orders make the reliability diagram symmetric about 0.5 and need no seed.
    """
    p = bt_probability(chosen, rejected)
    probs = np.concatenate([p, 1 - p])
    outcomes = np.concatenate([np.ones_like(p), np.zeros_like(p)])
    return probs, outcomes


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of the reliability diagram; mean_probability and observed are None for an empty bin."""

    lower: float
    upper: float
    count: int
    mean_probability: float | None
    observed: float | None
    """Share of outcomes that were 1 (the side the probability is about was preferred)."""


def _bin_index(probs: np.ndarray, n_bins: int) -> np.ndarray:
    # Bins are [k/n, (k+1)/n); probability 1.0 belongs to the last bin.
    return np.clip(np.floor(np.asarray(probs) * n_bins).astype(np.int64), 0, n_bins - 1)


def reliability_bins(
    probs: np.ndarray, outcomes: np.ndarray, *, n_bins: int = N_BINS
) -> list[ReliabilityBin]:
    """Equal-width bins over [0, 1] with the mean predicted probability and the observed frequency."""
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(outcomes, dtype=np.float64)
    index = _bin_index(p, n_bins)
    out = []
    for k in range(n_bins):
        mask = index == k
        n = int(mask.sum())
        out.append(
            ReliabilityBin(
                lower=k / n_bins,
                upper=(k + 1) / n_bins,
                count=n,
                mean_probability=float(p[mask].mean()) if n else None,
                observed=float(y[mask].mean()) if n else None,
            )
        )
    return out


def expected_calibration_error(probs: np.ndarray, outcomes: np.ndarray, *, n_bins: int = N_BINS) -> float:
    """ECE = Σ_bins (n_b / N) · |observed_b − mean_probability_b| over equal-width bins; NaN when empty."""
    bins = reliability_bins(probs, outcomes, n_bins=n_bins)
    total = sum(b.count for b in bins)
    if not total:
        return float("nan")
    return float(
        sum(
            b.count / total * abs(b.observed - b.mean_probability)
            for b in bins
            if b.observed is not None and b.mean_probability is not None
        )
    )


def brier_score(probs: np.ndarray, outcomes: np.ndarray) -> float:
    """Mean squared error of the probabilities against 0/1 outcomes; NaN when empty."""
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(outcomes, dtype=np.float64)
    return float(np.mean((p - y) ** 2)) if p.size else float("nan")


def pick_longer_accuracy(chosen_words: np.ndarray, rejected_words: np.ndarray) -> float:
    """Accuracy of "always pick the longer response"; a length tie counts half (the baseline flips a coin).

    Half, not wrong: a tie-as-wrong rule would understate the baseline the reward model must beat.
    """
    c, r = np.asarray(chosen_words), np.asarray(rejected_words)
    if c.size == 0:
        return float("nan")
    return float(np.mean((c > r) + 0.5 * (c == r)))


def seeded_positions(n: int, *, seed: int = 0) -> np.ndarray:
    """A fair, seeded assignment of which side of each pair is "A": True where A is the chosen response."""
    return np.random.default_rng(seed).random(n) < 0.5


def pick_a_accuracy(a_is_chosen: np.ndarray) -> float:
    """Accuracy of "always pick position A": the share of pairs whose A side was chosen."""
    a = np.asarray(a_is_chosen, dtype=np.float64)
    return float(a.mean()) if a.size else float("nan")


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation; None when it is undefined (fewer than 2 points, or a constant input)."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.size < 2:
        return None
    da, db = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((da**2).sum() * (db**2).sum()))
    return float((da * db).sum() / denom) if denom > 0 else None


def word_count(text: str) -> int:
    """Words in `text`: whitespace tokens with a letter or digit (bare punctuation is not a word)."""
    return sum(1 for token in text.split() if any(ch.isalnum() for ch in token))


def most_confident_wrong(
    chosen: np.ndarray, rejected: np.ndarray, groups: Sequence[str], *, k: int = 5
) -> dict[str, list[int]]:
    """Per group, the indices of up to k wrong pairs (r_c <= r_r), most confident first.

    Confidence in the wrong answer is r_r − r_c (so σ of it is the probability the model gave the
    rejected response); ties between pairs keep input order.
    """
    c, r = np.asarray(chosen, dtype=np.float64), np.asarray(rejected, dtype=np.float64)
    wrong = np.flatnonzero(~correct_pairs(c, r))
    ranked = wrong[np.argsort(-(r[wrong] - c[wrong]), kind="stable")]
    out: dict[str, list[int]] = {}
    for i in ranked:
        picked = out.setdefault(groups[i], [])
        if len(picked) < k:
            picked.append(int(i))
    return out
