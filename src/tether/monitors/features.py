"""Text features of generated responses: length, hedging, list formatting, confidence, diversity.

Generic English patterns PLUS the sandbox grammar's own phrases (imported from
`tether.sandbox.grammar`, never copied), so the sandbox is measured exactly: on any text the
grammar generates, these functions agree with `parse()`/`style_features()` (tested).

`step_text_metrics` gives the ``gen/*`` metrics the loop logs each step and the monitors read.

>>> is_hedged("i think the answer is 12 ."), is_list_formatted("here is my answer as a list : - ok .")
(True, True)
>>> distinct_n(["a b a b"], 2)     # bigrams: ab, ba, ab -> 2 distinct of 3
0.6666666666666666
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence

from tether.sandbox.grammar import CONFIDENT_SENTENCES, HEDGE_PREFIXES, HEDGE_SENTENCES, LIST_HEADER

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
"""A word: letters/digits, with inner apostrophes ("don't"); punctuation tokens are not words."""


def _sentence_phrase(sentence: str) -> str:
    """A grammar sentence without its final " ." token: "i am not sure about this"."""
    return sentence.rstrip(" .")


GENERIC_HEDGES = (
    "i think",
    "i believe",
    "i guess",
    "perhaps",
    "maybe",
    "possibly",
    "probably",
    "might",
    "it seems",
    "it appears",
    "i'm not sure",
    "i am not sure",
    "not certain",
    "i'm not certain",
    "could be wrong",
    "to the best of my knowledge",
    "double check",
    "double-check",
)
HEDGE_PHRASES = tuple(
    dict.fromkeys([*GENERIC_HEDGES, *HEDGE_PREFIXES, *(_sentence_phrase(s) for s in HEDGE_SENTENCES)])
)
GENERIC_CONFIDENT = (
    "definitely",
    "absolutely",
    "certainly",
    "without a doubt",
    "no doubt",
    "trust me",
    "100%",
)
CONFIDENT_PHRASES = tuple(
    dict.fromkeys([*GENERIC_CONFIDENT, *(_sentence_phrase(s) for s in CONFIDENT_SENTENCES)])
)


def _phrase_pattern(phrases: Sequence[str]) -> re.Pattern[str]:
    # Longest first so overlapping phrases count once; \b-style guards so "maybe" ≠ "maybelline".
    alternatives = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<![\w'])(?:{alternatives})(?![\w'])", re.IGNORECASE)


_HEDGE = _phrase_pattern(HEDGE_PHRASES)
_CONFIDENT = _phrase_pattern(CONFIDENT_PHRASES)
_BULLET_LINE = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+\S", re.MULTILINE)
_MARKDOWN_HEADER = re.compile(r"^\s*#{1,6}\s+\S", re.MULTILINE)
_SANDBOX_LIST = re.compile(rf"^\s*{re.escape(LIST_HEADER)}\s+-\s", re.IGNORECASE)


def words(text: str) -> list[str]:
    """Lower-cased word tokens; punctuation is dropped."""
    return [w.lower() for w in _WORD.findall(text)]


def word_count(text: str) -> int:
    """Response length in words (equals the grammar's `count_words` on sandbox text)."""
    return len(_WORD.findall(text))


def hedge_count(text: str) -> int:
    """Number of hedging phrases ("i think", "perhaps", "please double check this", ...)."""
    return len(_HEDGE.findall(text))


def is_hedged(text: str) -> bool:
    return hedge_count(text) > 0


def is_confident(text: str) -> bool:
    """Uses an assertive phrase ("trust me on this", "definitely", ...)."""
    return _CONFIDENT.search(text) is not None


def is_list_formatted(text: str) -> bool:
    """Formatted as a list or with markdown structure: the sandbox's list header with dashed items,
    two or more bullet/numbered lines, or a markdown header."""
    if _SANDBOX_LIST.search(text) or _MARKDOWN_HEADER.search(text):
        return True
    return len(_BULLET_LINE.findall(text)) >= 2


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct-n (Li et al. 2016): unique word n-grams / all word n-grams across ``texts``.

    Pooled over the batch, so it falls when responses repeat each other (mode collapse), not only
    when one response repeats itself. 0.0 when there are no n-grams."""
    grams: list[tuple[str, ...]] = []
    for text in texts:
        tokens = words(text)
        grams.extend(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0


def step_text_metrics(responses: Sequence[str]) -> dict[str, float]:
    """The ``gen/*`` metrics of one step's responses: mean length in words, share hedged, share
    list-formatted, share confident, pooled distinct-2. Empty input gives an empty dict."""
    if not responses:
        return {}
    return {
        "gen/length_mean": statistics.fmean(word_count(r) for r in responses),
        "gen/hedge_rate": statistics.fmean(is_hedged(r) for r in responses),
        "gen/list_rate": statistics.fmean(is_list_formatted(r) for r in responses),
        "gen/confident_rate": statistics.fmean(is_confident(r) for r in responses),
        "gen/distinct_2": distinct_n(responses, 2),
    }
