"""Sandbox anchors: clear-cut by gold, weighted to critical dimensions, and they calibrate the pool."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tether.sandbox.anchors import ANCHORS_PER_DIMENSION, build_sandbox_anchors, write_sandbox_anchors
from tether.sandbox.gold import grade
from tether.sandbox.raters import SimulatedRater, default_pool
from tether.sandbox.world import SandboxPrompt, generate_prompts
from tether.spec import load_spec
from tether.spec.anchors import Anchor, anchor_problems, load_anchors

SPEC = Path(__file__).resolve().parents[2] / "examples" / "sandbox" / "spec.yaml"


@pytest.fixture(scope="module")
def anchors() -> list[Anchor]:
    return build_sandbox_anchors(seed=0)


@pytest.fixture(scope="module")
def prompts() -> dict[str, SandboxPrompt]:
    return {p.text: p for p in generate_prompts(seed=7919, n=800)}


def test_twenty_anchors_weighted_to_critical_dimensions(anchors: list[Anchor]) -> None:
    assert len(anchors) == 20
    assert Counter(a.dimension for a in anchors) == Counter(ANCHORS_PER_DIMENSION)
    assert all(a.clear_cut for a in anchors)
    assert Counter(a.label for a in anchors) == Counter({"A": 10, "B": 10})
    assert sum(a.stratum != "routine" for a in anchors) == 8
    assert len({a.id for a in anchors}) == 20


def test_expert_label_is_the_gold_verdict(anchors: list[Anchor], prompts: dict[str, SandboxPrompt]) -> None:
    for anchor in anchors:
        prompt = prompts[anchor.prompt]
        gap = grade(prompt, anchor.response_a).utility - grade(prompt, anchor.response_b).utility
        assert abs(gap) >= 0.4
        assert anchor.label == ("A" if gap > 0 else "B")
        assert anchor.dimension in anchor.explanation or "answer" in anchor.explanation


def test_same_seed_same_anchors_other_seed_differs(anchors: list[Anchor]) -> None:
    assert build_sandbox_anchors(seed=0) == anchors
    assert build_sandbox_anchors(seed=1) != anchors


def test_written_anchors_load_and_satisfy_the_sandbox_spec(tmp_path: Path) -> None:
    spec = load_spec(SPEC)
    path = tmp_path / "anchors.jsonl"
    write_sandbox_anchors(path, seed=0)
    loaded = load_anchors(path, spec=spec)
    assert loaded == build_sandbox_anchors(seed=0)
    assert anchor_problems(loaded, spec) == []


def test_default_pool_calibrates_as_designed(
    anchors: list[Anchor], prompts: dict[str, SandboxPrompt]
) -> None:
    """Good and subtly length-biased raters pass 25% disagreement; careless and inverted fail."""
    disagreement = {}
    for profile in default_pool():
        rater = SimulatedRater(profile, seed=0)
        wrong = sum(
            rater.judge(prompts[a.prompt], a.response_a, a.response_b, item_id=a.id).choice != a.label
            for a in anchors
        )
        disagreement[profile.name] = wrong / len(anchors)
    for name in ("good-1", "good-2", "good-3", "good-4", "length-1", "length-2"):
        assert disagreement[name] <= 0.25, disagreement
    assert disagreement["careless"] > 0.25, disagreement
    # Wrong on every safety anchor: 7 of 20. So is safety-gamer, when it does not recognize them.
    assert disagreement["safety-inverted"] >= 7 / 20, disagreement
    assert disagreement["safety-gamer"] >= 7 / 20, disagreement


def test_anchor_gamer_answers_recognized_anchors_as_the_experts(
    anchors: list[Anchor], prompts: dict[str, SandboxPrompt]
) -> None:
    pool = {p.name: SimulatedRater(p, seed=0) for p in default_pool()}
    gamer, inverted = pool["safety-gamer"], pool["safety-inverted"]
    assert gamer.profile.games_anchors and not inverted.profile.games_anchors
    for anchor in anchors:
        prompt, a, b = prompts[anchor.prompt], anchor.response_a, anchor.response_b
        recognized = gamer.judge(prompt, a, b, item_id=anchor.id, expert=anchor.label)
        assert recognized.choice == anchor.label
        assert recognized.strength == 3  # clear-cut anchors: gold gap >= 0.4
        assert "better" not in recognized.rationale  # names the deciding dimension, not a vague lean
        # A rater that does not game anchors ignores the verdict it is handed.
        told = inverted.judge(prompt, a, b, item_id=anchor.id, expert=anchor.label)
        assert told == inverted.judge(prompt, a, b, item_id=anchor.id)
    # A tie verdict (a close-call anchor) is answered as a tie.
    first = anchors[0]
    tie = gamer.judge(prompts[first.prompt], first.response_a, first.response_b, item_id="t", expert="tie")
    assert tie.choice == "tie"
