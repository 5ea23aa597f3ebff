"""Peer agreement per dimension, and the flag that says a rater is far below the pool on one.

Expert anchors cannot catch a rater who recognizes them and answers them as the experts would
(`RaterProfile.games_anchors` in the sandbox; in practice, gold questions get recognized).
What such a rater cannot fake is agreement with the other raters on live work, and a rater who
is adversarial on one dimension shows it there and only there, so the figure is per dimension.

The flag is a prompt for an admin's review, never an exclusion: a rater who is right against
a mistaken majority looks exactly the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class PeerFlagRule:
    """When a rater's agreement with their peers on a dimension is far enough below the pool to flag.

    Flagged when, on at least `min_items` tasks, the upper end of a 95% Wilson interval of the
    rater's agreement lies below both the floor and the pool's median minus the margin. Each
    part guards against a different false alarm. The floor alone would flag the whole pool on a
    dimension whose tasks are honestly hard to call, so the rater must also lie below the pool;
    the median alone would flag a rater at 0.80 in a pool at 1.00, who is fine; and a point
    estimate on a few dozen tasks is noisy (standard error about 0.1 at 22 tasks), so it is the
    interval that must be below, not the estimate. In the sandbox e2e run, a point-estimate rule
    (below the floor and 0.2 below the median) flagged a length-biased rater at 0.55 over 22
    safety tasks (interval up to 0.73) along with the anchor gamer at 0.09 over 54 (interval up
    to 0.20); this rule flags only the gamer.
    """

    floor: float = 0.75
    """Flag only below this agreement; `raters_status` passes 1 − the spec's
    `max_expert_disagreement`, the disagreement the project already tolerates with experts."""
    margin: float = 0.1
    """... and below the median of the raters measured on the dimension, minus this."""
    min_items: int = 20
    """... on at least this many tasks, as must at least `min_raters` raters for a median."""
    min_raters: int = 3
    """Raters measured on the dimension, the flagged one included, for the median to be a pool's."""
    z: float = 1.96
    """Normal quantile of the Wilson interval whose upper end must be below: 1.96 for 95%."""

    def __post_init__(self) -> None:
        valid = 0.0 <= self.floor <= 1.0 and self.margin >= 0 and self.z >= 0
        if not valid or self.min_items < 1 or self.min_raters < 2:
            raise ValueError(
                "PeerFlagRule: need 0 <= floor <= 1, margin >= 0, z >= 0, min_items >= 1 and "
                f"min_raters >= 2, got {self}"
            )


def wilson_upper(share: FloatArray, n: IntArray, z: float) -> FloatArray:
    """Upper end of the Wilson score interval of a proportion `share` over `n` trials (nan where n == 0)."""
    trials = np.maximum(n, 1).astype(np.float64)
    centre = share + z * z / (2 * trials)
    spread = z * np.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    upper = (centre + spread) / (1 + z * z / trials)
    return np.where(n > 0, upper, np.nan)


def peer_agreement(
    rater: IntArray,
    dimension: IntArray,
    eligible: BoolArray,
    agrees: BoolArray,
    *,
    n_raters: int,
    n_dimensions: int,
) -> tuple[FloatArray, IntArray]:
    """(R, D) agreement with the other raters' majority (nan where unmeasured) and (R, D) task counts.

    Takes per-judgment columns with (eligible, agrees) from `metrics.others_majority`: a
    judgment counts when its task has >= 2 other judgments with a unique plurality.
    """
    cell = rater * n_dimensions + dimension  # (N,) one group per (rater, dimension)
    size = n_raters * n_dimensions
    count = np.bincount(cell[eligible], minlength=size)
    hits = np.bincount(cell[eligible & agrees], minlength=size)
    share = np.full(size, np.nan)
    np.divide(hits, count, out=share, where=count > 0)
    return share.reshape(n_raters, n_dimensions), count.reshape(n_raters, n_dimensions)


def pool_medians(agreement: FloatArray, items: IntArray, rule: PeerFlagRule) -> FloatArray:
    """(D,) median peer agreement over the raters measured on >= rule.min_items tasks of each
    dimension; nan where fewer than rule.min_raters are."""
    medians = np.full(agreement.shape[1], np.nan)
    for d in range(agreement.shape[1]):
        measured = agreement[items[:, d] >= rule.min_items, d]
        if len(measured) >= rule.min_raters:
            medians[d] = float(np.median(measured))
    return medians


def peer_flags(agreement: FloatArray, items: IntArray, medians: FloatArray, rule: PeerFlagRule) -> BoolArray:
    """(R, D) whether each rater's peer agreement on each dimension is flagged under `rule`."""
    measured = (items >= rule.min_items) & ~np.isnan(medians)[None, :]
    bar = np.minimum(rule.floor, medians - rule.margin)[None, :]  # (1, D)
    upper = wilson_upper(agreement, items, rule.z)
    with np.errstate(invalid="ignore"):  # nan compares False, which is what unmeasured cells need
        return measured & (upper < bar)
