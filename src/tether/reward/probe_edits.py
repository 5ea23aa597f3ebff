"""The probes' edits of ordinary text, from a style lexicon (`tether.spec.style.StyleLexicons`).

Each edit adds one kind of style and nothing else, so a reward change under it is the price the
reward model puts on that style: filler appends a filler sentence, hedge puts a hedging lead-in
before the text (or, when it already has one, appends a hedging sentence), confident puts a
certainty lead-in before an answer that neither hedges nor already claims certainty, and list
puts each sentence on its own bulleted line. An edit that cannot apply returns None.

>>> edits = LexiconEdits(StyleLexicons())
>>> edits.list("Paris is the capital. It is lovely.", random.Random(0))
'- Paris is the capital.\\n- It is lovely.'
"""

from __future__ import annotations

import random
import re

from tether.monitors.features import TextFeatures
from tether.spec.style import StyleLexicons

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_FIRST_WORD = re.compile(r"[\w']+")


def sentences(text: str) -> list[str]:
    """The sentences of `text`: split after ".", "!" or "?" and whitespace."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def lead_in(prefix: str, text: str) -> str:
    """`prefix` before `text`, its first letter lower-cased unless it is "I" or an acronym."""
    word = _FIRST_WORD.match(text)
    keep = word is not None and (
        word.group() == "I" or word.group().startswith("I'") or word.group().isupper()
    )
    return f"{prefix.strip()} {text if keep else text[:1].lower() + text[1:]}"


def _starts_with(text: str, phrases: list[str]) -> bool:
    return text.lower().startswith(tuple(p.lower() for p in phrases if p))


def _unused(text: str, candidates: list[str]) -> list[str]:
    lowered = text.lower()
    return [c for c in candidates if c.lower() not in lowered]


class LexiconEdits:
    """The four style edits of one lexicon, its features compiled once."""

    def __init__(self, lexicon: StyleLexicons) -> None:
        self.lexicon = lexicon
        self.features = TextFeatures(lexicon)

    def filler(self, response: str, rng: random.Random) -> str | None:
        """Append a filler sentence the response does not already have."""
        unused = _unused(response, self.lexicon.filler_sentences)
        if not response.strip() or not unused:
            return None
        return f"{response.rstrip()} {rng.choice(unused)}"

    def hedge(self, response: str, rng: random.Random) -> str | None:
        """A hedging lead-in; when the response already starts with one, a hedging sentence."""
        text = response.strip()
        if not text:
            return None
        if self.lexicon.hedge_prefixes and not _starts_with(text, self.lexicon.hedge_prefixes):
            return lead_in(rng.choice(self.lexicon.hedge_prefixes), response.lstrip())
        unused = _unused(text, self.lexicon.hedge_sentences)
        return f"{response.rstrip()} {rng.choice(unused)}" if unused else None

    def confident(self, response: str, rng: random.Random) -> str | None:
        """A certainty lead-in (or sentence), unless the response hedges or already sounds sure."""
        text = response.strip()
        if not text or self.features.is_confident(text) or self.features.is_hedged(text):
            return None  # sure and unsure at once is a contradiction, not a style
        if self.lexicon.confident_prefixes:
            return lead_in(rng.choice(self.lexicon.confident_prefixes), response.lstrip())
        if self.lexicon.confident_sentences:
            return f"{response.rstrip()} {rng.choice(self.lexicon.confident_sentences)}"
        return None

    def list(self, response: str, rng: random.Random) -> str | None:
        """Each sentence on its own line behind the list marker; None for lists, code and one-liners."""
        if "```" in response or self.features.is_list_formatted(response):
            return None
        parts = sentences(response)
        if len(parts) < self.lexicon.min_list_items:
            return None
        return "\n".join(f"{self.lexicon.list_marker}{part}" for part in parts)
