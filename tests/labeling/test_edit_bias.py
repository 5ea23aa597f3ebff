"""`tether.labeling.edit_bias`: a rater's taste for one style edit, read off counterfactual pairs."""

from __future__ import annotations

from tether.labeling.edit_bias import MIN_PAIRS, EditVote, edit_biases
from tether.labeling.metrics import wilson_interval


def _votes(rater: str, edited: int, other: int, probe: str = "confident") -> list[EditVote]:
    return [EditVote(rater, probe, True)] * edited + [EditVote(rater, probe, False)] * other


def test_a_rater_far_above_the_rest_of_the_pool_is_flagged_with_both_intervals() -> None:
    votes = _votes("conf", 18, 4) + _votes("good-1", 2, 38) + _votes("good-2", 3, 37)
    (bias,) = edit_biases(votes)
    assert (bias.rater, bias.probe, bias.pairs, bias.edited) == ("conf", "confident", 22, 18)
    assert bias.low == wilson_interval(18, 22)[0] and bias.others_high == wilson_interval(5, 80)[1]
    assert bias.others_share == 5 / 80 and "18 of 22" in bias.describe()


def test_no_flag_at_half_or_below_with_few_pairs_or_within_the_pools_spread() -> None:
    assert edit_biases(_votes("even", 20, 20) + _votes("good", 2, 38)) == []  # half is not more than half
    assert edit_biases(_votes("few", MIN_PAIRS - 1, 0) + _votes("good", 2, 38)) == []
    # A pool that likes the edit as much: the rater is not apart from it.
    assert edit_biases(_votes("a", 16, 6) + _votes("b", 15, 7) + _votes("c", 16, 6)) == []
    # Probes are judged apart: a taste for hedges says nothing about confident phrasing.
    mixed = (
        _votes("h", 20, 2, "hedge") + _votes("g", 1, 30, "hedge") + _votes("h", 1, 30) + _votes("g", 1, 30)
    )
    assert [(b.rater, b.probe) for b in edit_biases(mixed)] == [("h", "hedge")]
