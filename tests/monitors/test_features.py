"""Text features: generic English patterns, and exact agreement with the sandbox grammar."""

from __future__ import annotations

import random

import pytest

from tether.monitors import features as f
from tether.sandbox.grammar import HEDGE_SENTENCES, LIST_HEADER, parse, render_sft_example
from tether.sandbox.probes import SANDBOX_LEXICON
from tether.sandbox.world import generate_prompts

SANDBOX = f.TextFeatures(SANDBOX_LEXICON)
"""The sandbox's features: its world's lexicon (`SandboxWorld.lexicon`)."""


def test_generic_english_patterns() -> None:
    assert f.word_count("Hello, world! It's fine.") == 4
    assert f.hedge_count("Perhaps it works. I'm not sure, maybe not.") == 3
    assert not f.is_hedged("Maybelline sells mighty fine mascara.")  # whole phrases only
    assert not f.is_hedged("The answer is 12.")
    assert f.is_confident("Trust me, it is definitely 12.")
    assert not f.is_confident("It is 12.")
    assert f.is_list_formatted("Steps:\n1. mix\n2. bake")
    assert f.is_list_formatted("- one\n- two")
    assert f.is_list_formatted("## Answer\nIt is 12.")
    assert not f.is_list_formatted("- only one bullet")
    assert not f.is_list_formatted("The range is 3 - 5 and 7 - 9.")


def test_phrase_lists_include_the_sandbox_grammar() -> None:
    assert "i think" in SANDBOX.hedge_phrases and "please double check this" in SANDBOX.hedge_phrases
    assert "trust me on this" in SANDBOX.confident_phrases
    assert SANDBOX.hedge_count(HEDGE_SENTENCES[0]) == 1


def test_distinct_n_by_hand() -> None:
    assert f.distinct_n(["a b c", "a b c"], 2) == 0.5  # ab, bc, ab, bc
    assert f.distinct_n(["a b", "c d"], 2) == 1.0
    assert f.distinct_n(["a"], 2) == 0.0
    assert f.distinct_n(["a a a"], 1) == pytest.approx(1 / 3)


def test_step_text_metrics_by_hand() -> None:
    responses = ["i think the answer is 12 .", f"{LIST_HEADER} - the answer is 3 . - i hope this helps ."]
    metrics = f.step_text_metrics(responses, SANDBOX)
    assert metrics["gen/length_mean"] == pytest.approx((6 + 15) / 2)
    assert metrics["gen/hedge_rate"] == 0.5
    assert metrics["gen/list_rate"] == 0.5
    assert set(metrics) >= {"gen/length_mean", "gen/hedge_rate", "gen/list_rate", "gen/distinct_2"}
    assert f.step_text_metrics([]) == {}


def test_features_agree_with_the_sandbox_parser() -> None:
    rng = random.Random(0)
    prompts = generate_prompts(seed=0, n=120)
    for prompt in prompts * 3:
        text = render_sft_example(prompt, rng)
        parsed = parse(text)
        assert parsed is not None, text
        assert f.word_count(text) == parsed.n_words, text
        assert SANDBOX.hedge_count(text) == parsed.hedges, text
        assert SANDBOX.is_list_formatted(text) == parsed.as_list, text
        assert SANDBOX.is_confident(text) == parsed.confident, text
