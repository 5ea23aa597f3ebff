"""Raters who hold a style bias, found on counterfactual pairs.

A counterfactual pair (origin ``probe:<name>``, made by the loop's targeted relabeling) is a
response against the same response with one style edit: confident phrasing, a filler closer, a
hedge, list formatting. It isolates the edit, so a rater's choices on such pairs measure their taste
for it apart from everything else. A rater who chooses the edit far more often than the rest of
the pool does holds the bias the reward model learned from them.

The flag: a rater chose the edit in more than half of their counterfactual pairs of one probe, and
the Wilson 95% interval of their share lies wholly above that of the other raters' share on the same
probe's pairs. A tie counts as not choosing the edit ("no better"). At least `MIN_PAIRS` pairs of a
rater are needed. Measured on the planted confident pool (issue 16): the six raters with the taste
chose the confident edit in 948 of 1,027 counterfactual judgments (92%), the eight careful ones in 60
of 1,370 (4%), with 55% ties.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from tether.labeling.metrics import wilson_interval

PROBE_PREFIX = "probe:"
MIN_PAIRS = 20
"""A rater's counterfactual judgments of one probe before a flag: at 20 the Wilson interval of a
90% share is about [0.70, 0.97], already clear of a pool near 10%."""


@dataclass(frozen=True)
class EditVote:
    rater: str
    probe: str
    chose_edit: bool
    """False for the original and for a tie."""


@dataclass(frozen=True)
class EditBias:
    rater: str
    probe: str
    pairs: int
    edited: int
    share: float
    low: float
    others_share: float
    others_high: float

    def describe(self) -> str:
        return (
            f"chose the {self.probe} edit in {self.edited} of {self.pairs} counterfactual pairs "
            f"({self.share:.0%}, 95% CI from {self.low:.0%}) against {self.others_share:.0%} for the "
            f"rest of the pool (up to {self.others_high:.0%})"
        )


def edit_biases(votes: Sequence[EditVote]) -> list[EditBias]:
    """The raters flagged on counterfactual pairs, by probe (the module's rule), in vote order.

    >>> votes = [EditVote("c", "confident", True)] * 25 + [EditVote("g", "confident", False)] * 40
    >>> [(b.rater, b.edited, b.pairs) for b in edit_biases(votes)]
    [('c', 25, 25)]
    """
    counts: dict[tuple[str, str], Counter[bool]] = defaultdict(Counter)
    for vote in votes:
        counts[(vote.probe, vote.rater)][vote.chose_edit] += 1
    totals: dict[str, Counter[bool]] = defaultdict(Counter)
    for (probe, _), c in counts.items():
        totals[probe].update(c)
    out = []
    for (probe, rater), mine in counts.items():
        n, k = mine[True] + mine[False], mine[True]
        others_n, others_k = sum(totals[probe].values()) - n, totals[probe][True] - k
        if n < MIN_PAIRS or others_n == 0 or k * 2 <= n:
            continue
        low, _ = wilson_interval(k, n)
        _, others_high = wilson_interval(others_k, others_n)
        if low > others_high:
            out.append(EditBias(rater, probe, n, k, k / n, low, others_k / others_n, others_high))
    return out
