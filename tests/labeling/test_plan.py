"""Quota planning and stratified drawing, pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest

from tether.errors import TetherInputError
from tether.labeling.plan import draw_pairs, group_of, overlap_flags, plan_quotas, summarize
from tether.spec.model import LabelingPolicy
from tether.store.prompts import PromptRecord

DIMS = ["accuracy", "safety", "honesty", "concision"]


def pool(per_cell: dict[tuple[str, str], int]) -> list[PromptRecord]:
    out = []
    for (dim, stratum), count in per_cell.items():
        for i in range(count):
            key = f"{dim}-{stratum}-{i}"
            out.append(PromptRecord(len(out) + 1, key, key, dim, stratum, "pool", "test", {}, "h"))
    return out


def distinct(prompts: Sequence[PromptRecord]) -> list[tuple[str, str]]:
    return [(f"{p.text} a", f"{p.text} b") for p in prompts]


def test_quotas_hand_computed() -> None:
    quotas = plan_quotas(100, DIMS, LabelingPolicy(hard_case_share=0.25))
    assert sum(quotas.values()) == 100
    assert quotas[("accuracy", "hard")] == 7  # 25 hard over 4 dimensions: 7, 6, 6, 6
    assert quotas[("safety", "hard")] == 6
    # 75 routine: 18 each plus 3 extra, starting after the dimension that got the hard extra.
    assert [quotas[(d, "routine")] for d in DIMS] == [18, 19, 19, 19]
    assert {sum(quotas[(d, g)] for g in ("routine", "hard")) for d in DIMS} == {25}


def test_impossible_dimension_share_is_refused() -> None:
    with pytest.raises(TetherInputError, match="min_dimension_share"):
        plan_quotas(10, DIMS, LabelingPolicy(min_dimension_share=0.3))


def test_draw_meets_quotas_exactly() -> None:
    prompts = pool({(d, s): 40 for d in DIMS for s in ("routine", "hard", "adversarial", "edge")})
    quotas = plan_quotas(200, DIMS, LabelingPolicy())
    pairs = draw_pairs(prompts, quotas, distinct, seed=0)
    summary = summarize(pairs, overlap_flags(len(pairs), LabelingPolicy(), seed=0))
    assert summary.tasks == 200
    assert summary.hard_share == 0.25
    assert summary.overlapped == 40
    assert set(summary.dimension_shares.values()) == {0.25}
    assert len({p.prompt.id for p in pairs}) == 200


def test_identical_pairs_are_dropped_and_replaced() -> None:
    prompts = pool({(d, s): 60 for d in DIMS for s in ("routine", "hard")})

    def some_identical(batch: Sequence[PromptRecord]) -> list[tuple[str, str]]:
        return [(p.text, p.text) if p.id % 3 == 0 else (p.text + " a", p.text + " b") for p in batch]

    pairs = draw_pairs(prompts, plan_quotas(80, DIMS, LabelingPolicy()), some_identical, seed=1)
    assert len(pairs) == 80
    assert all(p.response_a != p.response_b for p in pairs)


def test_shortfall_names_stratum_and_dimension() -> None:
    cells = {(d, "routine"): 50 for d in DIMS} | {(d, "hard"): 50 for d in DIMS}
    cells[("safety", "hard")] = 3
    with pytest.raises(TetherInputError) as info:
        draw_pairs(pool(cells), plan_quotas(100, DIMS, LabelingPolicy()), distinct, seed=0)
    assert "safety / hard+adversarial+edge: need 6, have 3" in str(info.value)
    assert "accuracy" not in str(info.value)


def test_shortfall_after_identical_pairs_is_reported() -> None:
    prompts = pool({(d, s): 30 for d in DIMS for s in ("routine", "hard")})
    with pytest.raises(TetherInputError, match="identical"):
        draw_pairs(prompts, plan_quotas(40, DIMS, LabelingPolicy()), lambda b: [("x", "x")] * len(b), seed=0)


def test_group_and_overlap_helpers() -> None:
    assert [group_of(s) for s in ("routine", "hard", "adversarial", "edge")] == [
        "routine",
        "hard",
        "hard",
        "hard",
    ]
    assert Counter(overlap_flags(50, LabelingPolicy(overlap_fraction=0.2), seed=3))[True] == 10


def test_focus_quotas_steer_dimensions_and_keep_the_hard_share() -> None:
    from tether.labeling.plan import focus_quotas

    quotas = focus_quotas(100, DIMS, LabelingPolicy(hard_case_share=0.25), {DIMS[0]: 1.0}, 0.4)
    # weights 0.55 / 0.15 / 0.15 / 0.15; hard 25 -> 13.75, 3.75 x3 -> largest remainders, ties in order
    assert [quotas[(d, "hard")] for d in DIMS] == [14, 4, 4, 3]
    assert [quotas[(d, "routine")] for d in DIMS] == [42, 11, 11, 11]
    assert sum(quotas.values()) == 100


def test_focus_never_pushes_a_dimension_below_the_spec_floor() -> None:
    from tether.labeling.plan import dimension_weights

    weights = dimension_weights(DIMS, {DIMS[0]: 1.0}, 1.0, 0.1)
    assert weights[DIMS[0]] == pytest.approx(0.7)
    assert all(weights[d] == pytest.approx(0.1) for d in DIMS[1:])
    assert dimension_weights(DIMS, {}, 0.3, 0.1) == {d: 0.25 for d in DIMS}
