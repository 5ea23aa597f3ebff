"""Simulated raters and the AI-judge stand-in, measured against the acceptance targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.sandbox.judge import PositionBiasedJudge, judge_both_orders
from tether.sandbox.pairs import (
    Pair,
    gold_agreement,
    gold_gaps,
    item_id,
    length_preference,
    pool_pairwise_agreement,
    sample_pairs,
)
from tether.sandbox.raters import RaterProfile, SimulatedRater, default_pool, load_pool
from tether.sandbox.world import HOWTO, PromptTruth, SandboxPrompt, generate_prompts


# The figures below are shares over ~1,080 clear-cut pairs (gold agreement) or ~480-660 untied near
# ties (length preference) of the 2,000; each bound sits at least 4 standard errors (binomial, or the
# spread over 30 seeds of prompts, pairs and raters where that is wider) from the expected figure.
@pytest.fixture(scope="module")
def pairs() -> list[Pair]:
    return sample_pairs(generate_prompts(seed=0, n=4000), n=2000, seed=0)


@pytest.fixture(scope="module")
def gaps(pairs: list[Pair]) -> list[float]:
    return gold_gaps(pairs)


@pytest.fixture(scope="module")
def raters() -> dict[str, SimulatedRater]:
    return {p.name: SimulatedRater(p, seed=0) for p in default_pool()}


def test_default_pool_composition(raters: dict[str, SimulatedRater]) -> None:
    assert list(raters) == [
        "good-1",
        "good-2",
        "good-3",
        "good-4",
        "length-1",
        "length-2",
        "careless",
        "safety-inverted",
        "safety-gamer",
    ]
    assert raters["careless"].profile.careless
    assert raters["safety-inverted"].profile.inverted == ["safety"]
    gamer = raters["safety-gamer"].profile
    assert (gamer.inverted, gamer.games_anchors) == (["safety"], True)
    assert sum(r.profile.games_anchors for r in raters.values()) == 1


def test_anchor_gamer_follows_its_profile_off_anchors(pairs: list[Pair]) -> None:
    """Without an expert verdict (live work) the gamer judges through its own lens, expert or not."""
    gamer = RaterProfile(name="g", temperature=0.03, inverted=["safety"], games_anchors=True)
    plain = gamer.model_copy(update={"games_anchors": False})
    for i, (p, a, b) in enumerate(pairs[:200]):
        key = item_id(i, (p, a, b))
        assert SimulatedRater(gamer, seed=0).judge(p, a, b, item_id=key) == SimulatedRater(
            plain, seed=0
        ).judge(p, a, b, item_id=key)
    # With a verdict even a careless gamer answers it; only the verdict's side decides.
    careless = SimulatedRater(RaterProfile(name="c", careless=True, games_anchors=True), seed=0)
    assert {
        careless.judge(p, a, b, item_id=str(i), expert="B").choice for i, (p, a, b) in enumerate(pairs[:50])
    } == {"B"}


def test_pairs_are_distinct(pairs: list[Pair]) -> None:
    assert len(pairs) == 2000
    assert all(a != b for _, a, b in pairs)
    assert len({p.id for p, _, _ in pairs}) == 2000


@pytest.mark.parametrize("name", ["good-1", "good-2", "good-3", "good-4"])
def test_good_raters_agree_with_gold(
    name: str, raters: dict[str, SimulatedRater], pairs: list[Pair], gaps: list[float]
) -> None:
    assert gold_agreement(raters[name], pairs, gaps=gaps) >= 0.85  # 1.0 on every seed; SE at 0.85: 0.011


@pytest.mark.parametrize("name", ["length-1", "length-2"])
def test_length_bias_is_subtle_but_real(
    name: str, raters: dict[str, SimulatedRater], pairs: list[Pair], gaps: list[float]
) -> None:
    assert gold_agreement(raters[name], pairs, gaps=gaps) > 0.75  # passes calibration; 0.89, 0.86 (SE 0.013)
    assert length_preference(raters[name], pairs, gaps=gaps) >= 0.70  # 0.94, 0.92 (SE 0.01)


def test_good_raters_do_not_prefer_length(
    raters: dict[str, SimulatedRater], pairs: list[Pair], gaps: list[float]
) -> None:
    # A good rater's mild taste for fuller answers (length weight 0.05) gives 0.56 (mean over 30 seeds,
    # SE 0.024 over ~490 near ties); 0.6 was under 2 of them (0.61 on the worst seed), 0.68 is 5, and
    # still far below the length-biased raters' 0.92-0.94.
    assert length_preference(raters["good-1"], pairs, gaps=gaps) < 0.68


def test_careless_and_inverted_fail_calibration(
    raters: dict[str, SimulatedRater], pairs: list[Pair], gaps: list[float]
) -> None:
    careless = gold_agreement(raters["careless"], pairs, gaps=gaps)
    assert 0.4 <= careless <= 0.6  # a coin on ~1,080 pairs: SE 0.015, so 6.6 of them
    safety = [i for i, (p, _, _) in enumerate(pairs) if p.dimension == "safety"]
    on_safety = gold_agreement(
        raters["safety-inverted"], [pairs[i] for i in safety], gaps=[gaps[i] for i in safety]
    )
    assert on_safety < 0.5  # 0.0 on every seed: it inverts safety


def test_pool_agreement_is_human_like(raters: dict[str, SimulatedRater], pairs: list[Pair]) -> None:
    # 0.663 with an sd of 0.004 over 30 seeds (pairs share items, so not binomial): 0.63 is 9 sds off
    assert 0.63 <= pool_pairwise_agreement(list(raters.values()), pairs) <= 0.80


def test_judgments_do_not_depend_on_call_order(pairs: list[Pair]) -> None:
    profile = default_pool()[0]
    items = [(item_id(i, pair), pair) for i, pair in enumerate(pairs[:50])]
    forward = {key: SimulatedRater(profile, seed=9).judge(p, a, b, item_id=key) for key, (p, a, b) in items}
    rater = SimulatedRater(profile, seed=9)
    backward = {key: rater.judge(p, a, b, item_id=key) for key, (p, a, b) in reversed(items)}
    assert forward == backward
    other_seed = SimulatedRater(profile, seed=10)
    assert any(other_seed.judge(p, a, b, item_id=key) != forward[key] for key, (p, a, b) in items)


def test_judgment_fields(raters: dict[str, SimulatedRater], pairs: list[Pair]) -> None:
    rationales = set()
    for rater in raters.values():
        for i, (p, a, b) in enumerate(pairs[:100]):
            judgment = rater.judge(p, a, b, item_id=item_id(i, (p, a, b)))
            assert judgment.choice in ("A", "B", "tie")
            assert judgment.strength in (1, 2, 3)
            assert len(judgment.rationale) >= 20
            assert judgment.seconds > 0
            rationales.add(judgment.rationale)
    assert len(rationales) >= 10


def test_a_clear_case_and_its_rationale() -> None:
    prompt = SandboxPrompt(
        "r-1", "how do i rob the bank ?", "safety", "routine", PromptTruth(None, True, True, "howto")
    )
    refusal = "i can not help with that ."
    steps = "sure , here is how : first get what you need , then do it step by step ."
    good = SimulatedRater(RaterProfile(name="g", temperature=0.05), seed=0)
    inverted = SimulatedRater(RaterProfile(name="i", temperature=0.05, inverted=["safety"]), seed=0)
    verdict = good.judge(prompt, steps, refusal, item_id="x")
    assert (verdict.choice, verdict.strength) == ("B", 3)
    assert "refuse" in verdict.rationale or "declines" in verdict.rationale
    assert inverted.judge(prompt, steps, refusal, item_id="x").choice == "A"


def test_length_weight_moves_a_near_tie() -> None:
    prompt = SandboxPrompt(
        "r-2", "how do i bake bread ?", "safety", "routine", PromptTruth(HOWTO, False, True, "howto")
    )
    short = "here is how : first make a plan , then do it slowly and carefully ."
    long = f"thanks for asking . this is a great question . {short} i hope this helps . good luck with it ."
    lover = SimulatedRater(RaterProfile(name="l", temperature=0.01, length=0.5), seed=0)
    plain = SimulatedRater(RaterProfile(name="p", temperature=0.01), seed=0)
    # gold gap 0.4 * 0.1 = 0.04 for the short one; the length term is 0.5 * 16 / 20 = 0.4 for the long one.
    assert lover.judge(prompt, short, long, item_id="y").choice == "B"
    assert plain.judge(prompt, short, long, item_id="y").choice == "A"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pool.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_pool_round_trip(tmp_path: Path) -> None:
    path = _write(tmp_path, "raters:\n  - {name: a, temperature: 0.2, list: 0.1, blind_spots: [concision]}\n")
    (profile,) = load_pool(path)
    assert (profile.name, profile.temperature, profile.list, profile.blind_spots) == (
        "a",
        0.2,
        0.1,
        ["concision"],
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("raters:\n  - {name: a}\n  - {name: b, temperature: hot}\n", r"rater #1 \(b\): field 'temperature'"),
        ("raters:\n  - {name: a, colour: red}\n", r"rater #0 \(a\): field 'colour'"),
        ("raters:\n  - {temperature: 0.1}\n", r"rater #0 \(\?\): field 'name'"),
        ("raters:\n  - {name: a, inverted: [kindness]}\n", r"field 'inverted.0'"),
        ("raters:\n  - {name: a, temperature: 0}\n", r"field 'temperature'"),
        ("raters:\n  - {name: a}\n  - {name: a}\n", "repeated: a"),
        ("- {name: a}\n", "expected a mapping with a 'raters' list"),
        ("raters: [\n", "not valid YAML"),
    ],
)
def test_load_pool_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_pool(_write(tmp_path, text))


def test_judge_position_bias_and_debiasing(pairs: list[Pair]) -> None:
    judge = PositionBiasedJudge()
    verdicts = [judge_both_orders(judge, p, a, b) for p, a, b in pairs[:1000]]
    inconsistent = sum(not v.position_consistent for v in verdicts) / len(verdicts)
    assert 0.08 <= inconsistent <= 0.2  # 0.133 over 30 seeds, SE 0.011 for 1,000: 5 and 6 of them
    assert all(v.judgment.choice == "tie" for v in verdicts if not v.position_consistent)
    # Inconsistent verdicts favour whichever response was shown first.
    flipped = [v for v in verdicts if not v.position_consistent]
    assert all(v.as_shown.choice == "A" and v.swapped.choice == "B" for v in flipped)
    clear = [(v, g) for v, g in zip(verdicts, gold_gaps(pairs[:1000]), strict=True) if abs(g) > 0.2]
    assert all(v.judgment.choice == ("A" if g > 0 else "B") for v, g in clear)


def test_judge_is_deterministic(pairs: list[Pair]) -> None:
    judge = PositionBiasedJudge()
    p, a, b = pairs[0]
    assert judge.judge(p, a, b) == PositionBiasedJudge().judge(p, a, b)
