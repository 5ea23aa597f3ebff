"""The probes on ordinary assistant text: each edit adds its own style, from the lexicon, and nothing else."""

from __future__ import annotations

import random

import pytest

from tether.monitors.features import TextFeatures
from tether.reward.probes import ProbeContext, make_probe
from tether.spec.style import StyleLexicons

LEXICON = StyleLexicons()
FEATURES = TextFeatures(LEXICON)
ANSWERS = [
    "Paris is the capital of France. It has been the capital since the 10th century.",
    "Boil the water first. Then add the pasta and stir it for a minute.",
    "Use a list comprehension. It is shorter and usually faster than a loop.",
    "The mitochondria produce most of the cell's energy. They do it through respiration.",
    "Python 3.12 removed distutils. Install setuptools if an old package still needs it.",
]


def edit(name: str, text: str, seed: int = 0, lexicon: StyleLexicons = LEXICON) -> str | None:
    return make_probe(name, ProbeContext(lexicon)).edit(text, random.Random(seed))


def _same_words(a: str, b: str) -> bool:
    return a.split() == b.split()


@pytest.mark.parametrize("text", ANSWERS)
def test_filler_appends_one_filler_sentence(text: str) -> None:
    out = edit("filler", text)
    assert out is not None and out.startswith(text + " ")
    assert out[len(text) + 1 :] in LEXICON.filler_sentences
    padded = " ".join([text, *LEXICON.filler_sentences])
    assert edit("filler", padded) is None  # nothing left to add


@pytest.mark.parametrize("text", ANSWERS)
def test_hedge_adds_a_hedge_and_nothing_else(text: str) -> None:
    assert not FEATURES.is_hedged(text)
    once = edit("hedge", text, seed=1)
    assert once is not None and FEATURES.is_hedged(once)
    prefix = next(p for p in LEXICON.hedge_prefixes if once.startswith(p + " "))
    rest = once[len(prefix) + 1 :]
    assert rest[1:] == text[1:] and rest[0].lower() == text[0].lower()  # only the first letter's case
    twice = edit("hedge", once, seed=2)
    assert twice is not None and twice.startswith(once + " ")
    assert twice[len(once) + 1 :] in LEXICON.hedge_sentences
    assert FEATURES.hedge_count(twice) > FEATURES.hedge_count(once)


def test_hedge_keeps_the_case_of_i_and_acronyms() -> None:
    assert edit("hedge", "I would use SQLite.", lexicon=StyleLexicons(hedge_prefixes=["I think"])) == (
        "I think I would use SQLite."
    )
    assert edit("hedge", "NASA was founded in 1958.", lexicon=StyleLexicons(hedge_prefixes=["Perhaps"])) == (
        "Perhaps NASA was founded in 1958."
    )


@pytest.mark.parametrize("text", ANSWERS)
def test_list_puts_the_same_sentences_on_bulleted_lines(text: str) -> None:
    assert not FEATURES.is_list_formatted(text)
    out = edit("list", text)
    assert out is not None and FEATURES.is_list_formatted(out)
    lines = out.split("\n")
    assert all(line.startswith(LEXICON.list_marker) for line in lines)
    assert _same_words(" ".join(line.removeprefix(LEXICON.list_marker) for line in lines), text)
    assert edit("list", out) is None  # already a list


def test_list_leaves_one_liners_and_code_alone() -> None:
    assert edit("list", "Yes.") is None
    assert edit("list", "Run this. Then that.\n```\nprint(1)\n```") is None


@pytest.mark.parametrize("text", ANSWERS)
def test_confident_claims_certainty_unless_the_answer_hedges(text: str) -> None:
    out = edit("confident", text)
    assert out is not None and FEATURES.is_confident(out) and not FEATURES.is_confident(text)
    assert any(out.startswith(p + " ") for p in LEXICON.confident_prefixes)
    assert edit("confident", f"I think {text}") is None
    assert edit("confident", out) is None


def test_a_spec_lexicon_replaces_the_phrases() -> None:
    french = StyleLexicons(
        filler_sentences=["J'espère que cela vous aide !"], hedge_prefixes=["Je pense que"]
    )
    assert edit("filler", "Paris est la capitale.", lexicon=french) == (
        "Paris est la capitale. J'espère que cela vous aide !"
    )
    assert edit("hedge", "Paris est la capitale.", lexicon=french) == "Je pense que paris est la capitale."


def test_every_edit_is_a_pure_function_of_its_seed() -> None:
    for name in ("filler", "hedge", "list", "confident"):
        for seed in range(5):
            assert edit(name, ANSWERS[0], seed) == edit(name, ANSWERS[0], seed)
    assert edit("position", ANSWERS[0]) == ANSWERS[0]
