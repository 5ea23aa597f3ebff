"""Drift of the production prompt mix: a classifier two-sample test, pure and seeded.

Can a classifier tell recent production prompts from the reward model's training prompts? (1) Both
samples become hashed word 1-2-gram features (no vocabulary to fit, so nothing leaks between the
halves). (2) A stratified half of the pooled prompts trains an L2 logistic regression with balanced
class weights. (3) It scores the other half; the statistic is the held-out AUC of "production vs
training" (0.5: indistinguishable; 1.0: fully separable). (4) The p-value permutes the held-out
labels `permutations` times with a fixed seed: one-sided, (1 + #{AUC_perm >= AUC}) / (1 + B).

Permuting only the held-out labels is exact: the classifier never saw them, so under "no drift"
every assignment of the labels to the held-out scores is equally likely (it is a permutation version
of the one-sided Mann-Whitney test). Refitting per permutation, as a cross-validated AUC would need,
costs a fit each; this costs one fit in all, well under a second for 500 vs 2,000 prompts.

This follows Lopez-Paz and Oquab, "Revisiting classifier two-sample tests" (ICLR 2017), with AUC in
place of accuracy, which does not depend on a threshold or on the class sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

PERMUTATIONS = 1000
"""Permutations of the held-out labels; the smallest p-value possible is 1/1001."""
N_FEATURES = 2**18
"""Hashed feature buckets: collisions are rare at a few thousand short prompts."""
MIN_SAMPLE = 20
"""Fewest prompts on either side for a verdict (the spec's drift_window is at least 20)."""


@dataclass(frozen=True)
class TwoSampleResult:
    """Production vs reference prompts: how separable they are, and how surprising that is."""

    auc: float
    """Held-out AUC of the classifier that tells production (positive) from reference prompts."""
    p_value: float
    """One-sided permutation p-value of the AUC under "same distribution"."""
    n_recent: int
    n_reference: int
    permutations: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def auc_from_ranks(ranks: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """AUC (Mann-Whitney U / n1 n0) from the pooled ranks of the scores, for one or many labelings.

    `ranks`: (N,) average ranks (1-based) of the scores. `positive`: (N,) or (B, N) booleans.
    Ties count one half, as average ranks make them."""
    positive = np.atleast_2d(positive)  # (B, N)
    n1 = positive.sum(axis=1)  # (B,)
    n0 = positive.shape[1] - n1
    rank_sum = (positive * ranks[None, :]).sum(axis=1)  # (B,)
    return (rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0)


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks of `scores`, tied values sharing their average rank."""
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return np.asarray(sums[inverse] / counts[inverse])


def permutation_p_value(
    scores: np.ndarray, positive: np.ndarray, *, permutations: int, seed: int
) -> tuple[float, float]:
    """(AUC, one-sided permutation p-value) of `scores` separating `positive` from the rest."""
    ranks = average_ranks(scores)
    observed = float(auc_from_ranks(ranks, positive)[0])
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.broadcast_to(positive, (permutations, len(positive))), axis=1)  # (B, N)
    null = auc_from_ranks(ranks, shuffled)  # (B,)
    p_value = (1 + int(np.sum(null >= observed - 1e-12))) / (1 + permutations)
    return observed, p_value


def _features(texts: Sequence[str]) -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    vectorizer = HashingVectorizer(
        n_features=N_FEATURES,
        ngram_range=(1, 2),
        token_pattern=r"(?u)\b\w+\b",  # single characters too: numbers and one-letter words matter
        alternate_sign=False,
        binary=True,
        norm="l2",
    )
    return vectorizer.transform(list(texts))  # (N, N_FEATURES) sparse


def _held_out_scores(texts: list[str], labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit on a stratified half, score the other: (held-out scores, held-out labels)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    features = _features(texts)
    train_x, test_x, train_y, test_y = train_test_split(
        features, labels, test_size=0.5, stratify=labels, random_state=seed
    )
    # The dual problem: far fewer samples than features, so it solves in milliseconds (the primal took
    # seconds at 2**18 features).
    # liblinear's dual solver visits samples in random order: seeded, so a check is reproducible.
    model = LogisticRegression(
        C=1.0, class_weight="balanced", solver="liblinear", dual=True, max_iter=1000, random_state=seed
    )
    model.fit(train_x, train_y)
    return np.asarray(model.decision_function(test_x)), np.asarray(test_y, dtype=bool)


def classifier_two_sample_test(
    recent: Sequence[str], reference: Sequence[str], *, permutations: int = PERMUTATIONS, seed: int = 0
) -> TwoSampleResult:
    """How well a classifier tells `recent` from `reference` texts, with a permutation p-value."""
    if min(len(recent), len(reference)) < MIN_SAMPLE:
        raise ValueError(
            f"the two-sample test needs at least {MIN_SAMPLE} texts on each side, "
            f"got {len(recent)} recent and {len(reference)} reference"
        )
    if permutations < 1:
        raise ValueError(f"permutations must be at least 1, got {permutations}")
    texts = [*recent, *reference]
    labels = np.array([1] * len(recent) + [0] * len(reference))
    scores, positive = _held_out_scores(texts, labels, seed)
    auc, p_value = permutation_p_value(scores, positive, permutations=permutations, seed=seed)
    return TwoSampleResult(auc, p_value, len(recent), len(reference), permutations)


def subsample(texts: Sequence[str], limit: int, *, seed: int) -> list[str]:
    """At most `limit` of `texts`, a seeded draw without replacement (all of them, in order, if fewer)."""
    if len(texts) <= limit:
        return list(texts)
    picked = np.random.default_rng(seed).choice(len(texts), size=limit, replace=False)
    return [texts[i] for i in sorted(picked)]
