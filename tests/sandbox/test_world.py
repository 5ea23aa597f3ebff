"""The sandbox world: fixed facts, distinct balanced prompts, correct ground truth."""

from __future__ import annotations

import collections
import re

import pytest

from tether.sandbox.facts import COUNTRIES, UNKNOWN_COUNTRIES, Country
from tether.sandbox.world import DIMENSIONS, STRATA, SandboxPrompt, generate_prompts, split_for


@pytest.fixture(scope="module")
def big() -> list[SandboxPrompt]:
    return generate_prompts(seed=0, n=20_000)


def test_fact_table_is_fixed_and_hand_checkable() -> None:
    # names = prefix x suffix, capitals = head x tail, row i takes capital (7i mod 40).
    assert COUNTRIES[0] == Country("zorbia", "pelt", "red", "owl")
    assert COUNTRIES[1] == Country("quelbia", "bast", "yellow", "crow")
    assert len(COUNTRIES) == 40
    assert len({c.name for c in COUNTRIES}) == 40
    assert len({c.capital for c in COUNTRIES}) == 40


def test_unknown_countries_are_disjoint_from_known_ones() -> None:
    known = {c.name for c in COUNTRIES} | {c.capital for c in COUNTRIES}
    assert len(set(UNKNOWN_COUNTRIES)) == len(UNKNOWN_COUNTRIES) == 60
    assert not known & set(UNKNOWN_COUNTRIES)


def test_same_seed_same_prompts_other_seed_other_prompts() -> None:
    first = generate_prompts(seed=3, n=400)
    assert first == generate_prompts(seed=3, n=400)
    other = generate_prompts(seed=4, n=400)
    assert {p.text for p in first} != {p.text for p in other}


def test_twenty_thousand_distinct_prompts(big: list[SandboxPrompt]) -> None:
    assert len(big) == 20_000
    assert len({p.text for p in big}) == 20_000
    assert len({p.id for p in big}) == 20_000


def test_balance_over_dimensions_and_strata(big: list[SandboxPrompt]) -> None:
    per_dim = collections.Counter(p.dimension for p in big)
    assert set(per_dim.values()) == {5_000}
    for dimension in DIMENSIONS:
        strata = collections.Counter(p.stratum for p in big if p.dimension == dimension)
        assert strata["routine"] == 5_000 - 3 * 667
        assert all(strata[s] == 667 for s in STRATA[1:])


def test_safety_is_half_harmful_and_honesty_mostly_unanswerable(big: list[SandboxPrompt]) -> None:
    safety = [p for p in big if p.dimension == "safety"]
    honesty = [p for p in big if p.dimension == "honesty"]
    harmful = sum(p.truth.must_refuse for p in safety) / len(safety)
    unanswerable = sum(not p.truth.answerable for p in honesty) / len(honesty)
    # 5,000 prompts each: a share's standard error is at most 0.5/sqrt(5000) = 0.007, and both bounds
    # sit over 7 of them from the shares' expected values (0.52 and 0.67, the mean over 8 seeds)
    assert 0.42 <= harmful <= 0.58
    assert 0.55 <= unanswerable <= 0.72
    # Look-alikes ("kill a stuck process") are benign: the edge stratum is never harmful.
    assert not any(p.truth.must_refuse for p in safety if p.stratum == "edge")
    assert all(p.truth.must_refuse for p in safety if p.stratum == "adversarial")


def test_text_conventions(big: list[SandboxPrompt]) -> None:
    token = re.compile(r"^(?:[a-z0-9']+|[.,?:-])$")
    for prompt in big[:5000]:
        words = prompt.text.split(" ")
        assert len(words) <= 25
        assert all(token.match(w) for w in words), prompt.text
    vocabulary = {w for p in big for w in p.text.split()}
    assert len(vocabulary) < 700


def _evaluate(expression: list[str]) -> int:
    """Independent evaluator: times binds tighter than plus and minus."""
    terms: list[int] = [int(expression[0])]
    ops: list[str] = []
    for op, number in zip(expression[1::2], expression[2::2], strict=True):
        if op == "times":
            terms[-1] *= int(number)
        else:
            terms.append(int(number))
            ops.append(op)
    total = terms[0]
    for op, value in zip(ops, terms[1:], strict=True):
        total = total + value if op == "plus" else total - value
    return total


def test_arithmetic_truth_matches_the_question(big: list[SandboxPrompt]) -> None:
    pattern = re.compile(r"(?:what is|how much is|compute) ((?:\d+ (?:plus|minus|times) )+\d+) [?.]$")
    checked = 0
    for prompt in big:
        match = pattern.search(prompt.text)
        if prompt.dimension == "accuracy" and match:
            assert prompt.truth.answer == str(_evaluate(match.group(1).split())), prompt.text
            checked += 1
    assert checked > 3000


def test_lookup_truth_matches_the_table(big: list[SandboxPrompt]) -> None:
    capitals = {c.name: c.capital for c in COUNTRIES}
    for prompt in big:
        match = re.fullmatch(r"what is the capital of (\w+) \?", prompt.text)
        if match and match.group(1) in capitals:
            assert prompt.truth.answer == capitals[match.group(1)]
            assert prompt.truth.answerable
        elif match:
            assert not prompt.truth.answerable and prompt.truth.answer is None


def test_parity_truth_matches_the_question() -> None:
    prompts = generate_prompts(seed=0, n=4000)
    parity = [p for p in prompts if re.search(r"is (\d+) (even|odd) \?$", p.text)]
    assert parity
    for prompt in parity:
        n, kind = re.search(r"is (\d+) (even|odd) \?$", prompt.text).groups()  # type: ignore[union-attr]
        expected = "yes" if (int(n) % 2 == 0) == (kind == "even") else "no"
        assert prompt.truth.answer == expected


def test_meta_round_trip() -> None:
    for prompt in generate_prompts(seed=1, n=40):
        assert SandboxPrompt.from_meta(prompt.to_meta()) == prompt
    meta = generate_prompts(seed=1, n=1)[0].to_meta()
    with pytest.raises(ValueError, match="unknown dimension"):
        SandboxPrompt.from_meta({**meta, "dimension": "vibes"})


def test_split_is_stable_and_about_ten_percent(big: list[SandboxPrompt]) -> None:
    splits = [split_for(p.id, seed=0) for p in big]
    assert splits == [split_for(p.id, seed=0) for p in big]
    share = splits.count("eval") / len(splits)
    assert 0.08 <= share <= 0.12  # 20,000 hashed coins at 0.1: standard error 0.002, so 9 of them
    assert split_for("sbx-acc-000001", seed=0, eval_share=0.0) == "pool"
    assert split_for("sbx-acc-000001", seed=0, eval_share=1.0) == "eval"


def test_negative_n_is_an_error() -> None:
    with pytest.raises(ValueError, match="n must be"):
        generate_prompts(seed=0, n=-1)
