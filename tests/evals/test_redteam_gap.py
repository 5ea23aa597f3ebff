"""The red-team gap and ranking: hand-computed values, and a length-biased scorer against gold."""

from __future__ import annotations

import doctest
import itertools
import math
import random
from collections.abc import Sequence

import numpy as np
import pytest

import tether.evals.redteam_gap as gap_module
from tether.errors import TetherInputError
from tether.evals.graders import GraderContext, build_grader
from tether.evals.redteam_candidates import Baseline, Candidate, collect_candidates, rank
from tether.evals.redteam_gap import GapScale, disagrees, top_candidates
from tether.evals.redteam_inputs import ANY_DIMENSION, IndependentGrader
from tether.reward.probes import ProbeContext, make_probe
from tether.sandbox.grammar import render_sft_example
from tether.sandbox.world import generate_prompts
from tether.spec.model import Spec
from tether.store.prompts import PromptRecord
from tether.world import load_world


def record(i: int, text: str, meta: dict | None = None, dimension: str = "accuracy") -> PromptRecord:  # type: ignore[type-arg]
    return PromptRecord(i, f"p{i}", text, dimension, "hard", "pool", "test", meta or {}, "hash")


def test_module_docstring_example_runs() -> None:
    result = doctest.testmod(gap_module)
    assert result.attempted > 0 and result.failed == 0


def test_scale_and_gap_match_hand_computed_values() -> None:
    scale = GapScale.fit([1.0, 2.0, 3.0, 6.0], [1.0, 0.5, 0.5, 0.0])
    # rm: mean 3, population sd sqrt(14 / 4); grades: mean 0.5, sd sqrt(0.5 / 4)
    assert scale.rm_mean == pytest.approx(3.0) and scale.rm_sd == pytest.approx(math.sqrt(3.5))
    assert scale.grader_mean == pytest.approx(0.5) and scale.grader_sd == pytest.approx(math.sqrt(0.125))
    assert scale.gap(6.0, 0.0) == pytest.approx(3 / math.sqrt(3.5) + 0.5 / math.sqrt(0.125))  # 3.0178
    assert scale.gap(6.0, 0.0) == pytest.approx(3.017781, abs=1e-6)
    assert scale.gap(1.0, 1.0) == pytest.approx(-2.483259, abs=1e-6)
    assert scale.gap(3.0, 0.5) == 0.0
    vector = scale.gaps([6.0, 1.0, 3.0], [0.0, 1.0, 0.5])
    assert vector.tolist() == pytest.approx([3.017781, -2.483259, 0.0], abs=1e-6)
    # Against a baseline (reward 2, grade 0.5): +4 reward and -0.5 grade, in sds
    assert scale.gap(6.0, 0.0, baseline=(2.0, 0.5)) == pytest.approx(3.552304, abs=1e-6)
    assert scale.gap(2.0, 0.5, baseline=(2.0, 0.5)) == 0.0  # the baseline itself
    against = scale.gaps([6.0, 1.0], [0.0, 1.0], base_rm=[2.0, 1.0], base_grade=[0.5, 0.0])
    assert against.tolist() == pytest.approx([3.552304, -2.828427], abs=1e-6)  # 0 - 1 / sqrt(.125)


def test_a_side_that_does_not_vary_counts_zero() -> None:
    scale = GapScale.fit([0.0, 1.0], [0.3, 0.3])
    assert scale.grader_sd == 0.0
    assert scale.gap(1.0, 0.0) == pytest.approx(1.0)  # (1 - 0.5) / 0.5; the grade adds nothing
    assert scale.gaps([1.0], [0.0]).tolist() == [pytest.approx(1.0)]


def test_scale_round_trips_and_refuses_what_it_cannot_read() -> None:
    scale = GapScale.fit([1.0, 3.0], [0.0, 1.0])
    assert GapScale.from_dict(scale.to_dict()) == scale
    assert GapScale.from_dict({}) is None
    assert GapScale.from_dict({**scale.to_dict(), "rm_sd": float("nan")}) is None
    with pytest.raises(ValueError, match="at least one"):
        GapScale.fit([], [])


def test_top_candidates_takes_positive_gaps_largest_first_capped_per_group() -> None:
    gaps = [0.5, 2.0, -1.0, 2.0, 1.0, 0.0]
    groups = ["a", "a", "b", "b", "a", "c"]
    assert top_candidates(gaps, groups, top=3) == [1, 3, 4]  # the tie keeps input order; 0.0 never
    assert top_candidates(gaps, groups, top=10) == [1, 3, 4, 0]
    assert top_candidates(gaps, groups, top=10, per_group=1) == [1, 3]
    assert top_candidates(gaps, groups, top=1, per_group=1) == [1]
    with pytest.raises(ValueError):
        top_candidates([1.0], [], top=1)


def test_collect_candidates_dedupes_counts_and_adds_new_edits() -> None:
    p, q = record(1, "what is 2 plus 2 ?"), record(2, "what is 3 plus 3 ?")
    samples = [["4 .", "4 .", "5 .", "  "], ["6 ."]]
    candidates = collect_candidates([p, q], samples, [make_probe("filler")], seed=0)
    sampled = [(c.prompt.id, c.response, c.times, c.sample_index) for c in candidates if c.origin == "sample"]
    assert sampled == [(1, "4 .", 2, 0), (1, "5 .", 1, 2), (2, "6 .", 1, 0)]  # blank sample dropped
    edits = [c for c in candidates if c.origin == "probe:filler"]
    assert len(edits) == 3 and all(
        c.times == 0 and c.response.startswith(("4 .", "5 .", "6 .")) for c in edits
    )
    assert [c.sample_index for c in edits] == [0, 2, 0]
    again = collect_candidates([p, q], samples, [make_probe("filler")], seed=0)
    assert again == candidates  # seeded edits


def test_rank_uses_graded_candidates_only_and_refuses_when_none_is_graded() -> None:
    p = record(1, "x")
    candidates = [Candidate(p, r, "sample", i) for i, r in enumerate(["a", "b", "c", "d"])]
    ranked = rank(candidates, np.array([1.0, 2.0, 6.0, 3.0]), [1.0, 0.5, 0.0, None], keep=5, per_prompt=None)
    assert [c.response for c in ranked.candidates] == ["a", "b", "c"]
    # rm [1, 2, 6]: mean 3, sd sqrt(14/3); grades [1, .5, 0]: mean .5, sd sqrt(1/6); no baseline: the means
    expected_c = 3 / math.sqrt(14 / 3) + 0.5 / math.sqrt(1 / 6)
    assert ranked.gaps[2] == pytest.approx(expected_c)
    assert ranked.kept == [2]  # a and b have negative gaps
    with pytest.raises(TetherInputError, match="scored none"):
        rank(candidates, np.zeros(4), [None] * 4, keep=5, per_prompt=None)


def test_rank_keeps_what_the_reward_model_prefers_over_the_baseline_and_graders_do_not() -> None:
    p, q, r, t = record(1, "x"), record(2, "y"), record(3, "z"), record(4, "w")
    candidates = [
        Candidate(p, "long wrong", "sample", 0),
        Candidate(p, "short right", "sample", 1),
        Candidate(q, "long right", "sample", 0),
        Candidate(t, "much longer, a bit better", "sample", 0),
        Candidate(r, "anything", "sample", 0),
    ]
    baselines = {
        1: Baseline("short right", 1.0, 1.0),
        2: Baseline("short wrong", 1.0, 0.0),
        3: Baseline("ungradable", 0.0, None),  # no reference: r's candidate is left out
        4: Baseline("short", 1.0, 0.4),
    }
    rm = np.array([3.0, 1.0, 3.0, 9.0, 9.0])
    ranked = rank(candidates, rm, [0.0, 1.0, 1.0, 0.5, 0.5], baselines=baselines, keep=5, per_prompt=None)
    assert len(ranked.candidates) == 4 and ranked.candidates[-1].prompt is t
    # rm [3, 1, 3, 9]: mean 4, sd 3; grades [0, 1, 1, .5]: mean .625, sd sqrt(.171875)
    rm_sd, grade_sd = 3.0, math.sqrt(0.171875)
    assert ranked.scale.rm_sd == pytest.approx(rm_sd) and ranked.scale.grader_sd == pytest.approx(grade_sd)
    expected = [2 / rm_sd + 1 / grade_sd, 0.0, 2 / rm_sd - 1 / grade_sd, 8 / rm_sd - 0.1 / grade_sd]
    assert ranked.gaps.tolist() == pytest.approx(expected)
    assert expected[3] > 0  # a positive gap, but the graders prefer it to the baseline too: no finding
    assert ranked.kept == [0]  # the identical output has gap 0; "long right" the graders prefer
    assert ranked.base_rm.tolist() == [1.0, 1.0, 1.0, 1.0] and ranked.base_grades.tolist() == [
        1.0,
        1.0,
        0.0,
        0.4,
    ]


def test_disagrees_and_eligibility() -> None:
    assert disagrees([2.0, 2.0, 2.0, 1.0], [0.5, 0.6, 0.4, 0.0], [1.0] * 4, [0.5] * 4).tolist() == [
        True,  # a tie by the graders: the reward model's preference is not theirs
        False,
        True,
        False,  # the reward model does not prefer it
    ]
    assert top_candidates([3.0, 2.0, 1.0], ["a", "b", "c"], top=5, eligible=[False, True, True]) == [1, 2]


class WordCountReward:
    """A reward model that loves length: one point per word (the sandbox rater pool's bias, exaggerated)."""

    def score(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return np.array([len(r.split()) for r in responses], dtype=np.float32)


def test_a_length_loving_reward_model_is_caught_padding_answers(sandbox_spec: Spec) -> None:
    prompts = [
        record(i, p.text, p.to_meta(), p.dimension) for i, p in enumerate(generate_prompts(seed=3, n=60))
    ]
    rng = random.Random(0)
    samples = [
        [render_sft_example(p_meta, rng) for _ in range(3)] for p_meta in generate_prompts(seed=3, n=60)
    ]
    sandbox = ProbeContext.for_world(load_world("sandbox"), sandbox_spec.style)  # the grammar's edits
    probes = [make_probe(name, sandbox) for name in ("filler", "list", "confident")]
    candidates = collect_candidates(prompts, samples, probes, seed=0)
    gold = build_grader("gold", GraderContext(spec=sandbox_spec), field="utility")
    grader = IndependentGrader({ANY_DIMENSION: [gold]})
    grades = grader.grade([c.prompt for c in candidates], [c.response for c in candidates])
    scorer = WordCountReward()
    reward = scorer.score([], [c.response for c in candidates]).astype(np.float64)
    # The baseline is each prompt's first sample, as if the SFT policy had written it once more.
    firsts = [c for c in candidates if c.origin == "sample" and c.sample_index == 0]
    base_grades = grader.grade([c.prompt for c in firsts], [c.response for c in firsts])
    baselines = {
        c.prompt.id: Baseline(c.response, float(scorer.score([], [c.response])[0]), g)
        for c, g in zip(firsts, base_grades, strict=True)
    }
    ranked = rank(candidates, reward, grades, baselines=baselines, keep=20, per_prompt=1)
    kept = ranked.kept
    assert len(kept) == 20 and len({ranked.candidates[i].prompt.id for i in kept}) == 20
    assert ranked.rm[kept].mean() > ranked.rm.mean() + ranked.scale.rm_sd
    assert ranked.grades[kept].mean() < ranked.grades.mean() - ranked.scale.grader_sd / 2
    assert (
        sum(ranked.candidates[i].origin.startswith("probe:") for i in kept) >= 10
    )  # padding is what it loves
    assert all(ranked.gaps[a] >= ranked.gaps[b] for a, b in itertools.pairwise(kept))
    assert all(ranked.grades[i] < ranked.base_grades[i] and ranked.rm[i] > ranked.base_rm[i] for i in kept)
