"""Text features of generated responses: length, hedging, list formatting, confidence, diversity.

The phrases come from a style lexicon (`tether.spec.style.StyleLexicons`): a project's world
gives it (`world.lexicon(spec.style)`, the spec's `style:` section in a plain project), and
`features_for(project)` builds the features from it. The sandbox's lexicon is its grammar's own
phrases, so on any text the grammar generates its features agree with `parse()` (tested).
The module-level functions use the default English lexicon.

`TextFeatures.step_metrics` gives the ``gen/*`` metrics the loop logs each step and the monitors read.

>>> is_hedged("I think it might rain."), is_list_formatted("Steps:\\n1. mix\\n2. bake")
(True, True)
>>> distinct_n(["a b a b"], 2)     # bigrams: ab, ba, ab -> 2 distinct of 3
0.6666666666666666
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tether.spec.style import StyleLexicons

if TYPE_CHECKING:
    from tether.project import Project

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
"""A word: letters/digits, with inner apostrophes ("don't"); punctuation tokens are not words."""


def phrase_pattern(phrases: Sequence[str]) -> re.Pattern[str]:
    """Any of `phrases` as whole words, case-insensitively; matches nothing when there are none."""
    if not phrases:
        return re.compile(r"(?!x)x")
    # Longest first so overlapping phrases count once; \b-style guards so "maybe" ≠ "maybelline".
    alternatives = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<![\w'])(?:{alternatives})(?![\w'])", re.IGNORECASE)


class TextFeatures:
    """The style features of one lexicon, its patterns compiled once."""

    def __init__(self, lexicon: StyleLexicons) -> None:
        self.lexicon = lexicon
        self.hedge_phrases = lexicon.hedge_phrases
        self.confident_phrases = lexicon.confident_phrases
        self._hedge = phrase_pattern(self.hedge_phrases)
        self._confident = phrase_pattern(self.confident_phrases)
        item = lexicon.list_item_pattern
        self._item_line = re.compile(rf"^\s*{item}\s+\S", re.MULTILINE)
        headers = "|".join(re.escape(h.strip()) for h in lexicon.list_headers)
        self._headed = re.compile(rf"^\s*(?:{headers})\s+{item}\s", re.IGNORECASE) if headers else None
        self._markdown = [re.compile(p, re.MULTILINE) for p in lexicon.markdown_patterns]

    def hedge_count(self, text: str) -> int:
        """Number of hedging phrases ("i think", "perhaps", "please double check this", ...)."""
        return len(self._hedge.findall(text))

    def is_hedged(self, text: str) -> bool:
        return self.hedge_count(text) > 0

    def is_confident(self, text: str) -> bool:
        """Uses an assertive phrase ("trust me on this", "definitely", ...)."""
        return self._confident.search(text) is not None

    def is_list_formatted(self, text: str) -> bool:
        """Formatted as a list or with markdown structure: a list header then an item, enough item
        lines (bullets or numbers), or a markdown pattern (a heading, bold)."""
        if self._headed is not None and self._headed.search(text):
            return True
        if any(p.search(text) for p in self._markdown):
            return True
        return len(self._item_line.findall(text)) >= self.lexicon.min_list_items

    def step_metrics(self, responses: Sequence[str]) -> dict[str, float]:
        """The ``gen/*`` metrics of one step's responses: mean length in words, share hedged, share
        list-formatted, share confident, pooled distinct-2. Empty input gives an empty dict."""
        if not responses:
            return {}
        return {
            "gen/length_mean": statistics.fmean(word_count(r) for r in responses),
            "gen/hedge_rate": statistics.fmean(self.is_hedged(r) for r in responses),
            "gen/list_rate": statistics.fmean(self.is_list_formatted(r) for r in responses),
            "gen/confident_rate": statistics.fmean(self.is_confident(r) for r in responses),
            "gen/distinct_2": distinct_n(responses, 2),
        }


DEFAULT_FEATURES = TextFeatures(StyleLexicons())
"""The features of the default English lexicon."""


def features_for(project: Project) -> TextFeatures:
    """The features of the project's lexicon: its world's, from the spec's `style:` section."""
    from tether.world import world_for

    return TextFeatures(world_for(project).lexicon(project.spec.style))


def words(text: str) -> list[str]:
    """Lower-cased word tokens; punctuation is dropped."""
    return [w.lower() for w in _WORD.findall(text)]


def word_count(text: str) -> int:
    """Response length in words (equals the grammar's `count_words` on sandbox text)."""
    return len(_WORD.findall(text))


def hedge_count(text: str) -> int:
    return DEFAULT_FEATURES.hedge_count(text)


def is_hedged(text: str) -> bool:
    return DEFAULT_FEATURES.is_hedged(text)


def is_confident(text: str) -> bool:
    return DEFAULT_FEATURES.is_confident(text)


def is_list_formatted(text: str) -> bool:
    return DEFAULT_FEATURES.is_list_formatted(text)


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct-n (Li et al. 2016): unique word n-grams / all word n-grams across ``texts``.

    Pooled over the batch, so it falls when responses repeat each other (mode collapse), not only
    when one response repeats itself. 0.0 when there are no n-grams."""
    grams: list[tuple[str, ...]] = []
    for text in texts:
        tokens = words(text)
        grams.extend(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0


def step_text_metrics(
    responses: Sequence[str], features: TextFeatures = DEFAULT_FEATURES
) -> dict[str, float]:
    """The ``gen/*`` metrics of one step's responses with `features` (default: English)."""
    return features.step_metrics(responses)
