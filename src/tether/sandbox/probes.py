"""The sandbox's probe edits and style lexicon: its grammar's own phrases.

Sandbox responses are edited with the grammar's sentences, so an edit stays in the vocabulary the
sandbox reward model was trained on and still parses. Text outside the grammar (a truncated or
garbled sample) gets the fixed English edit the sandbox has always used, so its figures never move.
The lexicon is the grammar's phrases plus the English words the sandbox monitors always counted.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from tether.sandbox import grammar as g
from tether.sandbox.world import HOWTO
from tether.spec.style import StyleLexicons
from tether.world import ProbeEdit

SANDBOX_LEXICON = StyleLexicons(
    filler_sentences=list(g.FILLERS),
    filler_phrases=[],
    hedge_prefixes=list(g.HEDGE_PREFIXES),
    hedge_sentences=list(g.HEDGE_SENTENCES),
    hedge_words=[
        *("i think", "i believe", "i guess", "perhaps", "maybe", "possibly", "probably", "might"),
        *("it seems", "it appears", "i'm not sure", "i am not sure", "not certain", "i'm not certain"),
        *("could be wrong", "to the best of my knowledge", "double check", "double-check"),
    ],
    confident_prefixes=[],
    confident_sentences=list(g.CONFIDENT_SENTENCES),
    confident_words=[
        "definitely",
        "absolutely",
        "certainly",
        "without a doubt",
        "no doubt",
        "trust me",
        "100%",
    ],
    list_headers=[g.LIST_HEADER],
    list_marker="- ",
    list_item_pattern=r"(?:[-*•]|\d+[.)])",
    min_list_items=2,
    markdown_patterns=[r"^\s*#{1,6}\s+\S"],
)
"""What the sandbox monitors have always matched: generic English plus the grammar's phrases."""


def _sandbox_sentences(response: str) -> tuple[g.ParsedResponse, list[str]] | None:
    """The parse and the plain sentences ("... .") of a sandbox response, list markup removed."""
    parsed = g.parse(response)
    if parsed is None:
        return None
    tokens = response.split()
    header = g.LIST_HEADER.split()
    if parsed.as_list:
        tokens = [t for t in tokens[len(header) :] if t != "-"]
    text = " ".join(tokens)
    return parsed, [s.strip() + " ." for s in text.split(" .") if s.strip()]


def _sandbox_join(sentences: Sequence[str], as_list: bool) -> str:
    if as_list:
        return f"{g.LIST_HEADER} " + " ".join(f"- {s}" for s in sentences)
    return " ".join(sentences)


def _core_index(sentences: Sequence[str]) -> int:
    """Position of the claim (answer, steps, refusal, "i do not know"); fillers and hedges are not."""
    style = set(g.FILLERS) | set(g.HEDGE_SENTENCES) | set(g.CONFIDENT_SENTENCES)
    return next(i for i, s in enumerate(sentences) if s not in style)


def _first_lower(text: str) -> str:
    return text[:1].lower() + text[1:]


def filler(response: str, rng: random.Random) -> str | None:
    """Append a closer ("i hope this helps ."): longer, no better."""
    found = _sandbox_sentences(response)
    if found is None:
        return f"{response.rstrip()} I hope this helps! Let me know if you have any other questions."
    parsed, sentences = found
    unused = [c for c in g.CLOSERS if c not in sentences]
    if not unused:
        return None
    return _sandbox_join([*sentences, rng.choice(unused)], parsed.as_list)


def hedge(response: str, rng: random.Random) -> str | None:
    """Hedge the claim ("i think the answer is ..."); plain answers only, as the grammar allows."""
    found = _sandbox_sentences(response)
    if found is None:
        return f"I'm not completely sure, but {_first_lower(response.lstrip())}"
    parsed, sentences = found
    if parsed.kind != "answer" or parsed.value == HOWTO or parsed.confident:
        return None  # the grammar hedges plain answers only; sure and unsure at once does not parse
    core = _core_index(sentences)
    if not sentences[core].startswith(tuple(g.HEDGE_PREFIXES)):
        sentences[core] = f"{rng.choice(g.HEDGE_PREFIXES)} {sentences[core]}"
    elif not set(g.HEDGE_SENTENCES) & set(sentences):
        sentences.insert(core + 1, rng.choice(g.HEDGE_SENTENCES))
    else:
        return None
    return _sandbox_join(sentences, parsed.as_list)


def as_list(response: str, rng: random.Random) -> str | None:
    """The same sentences under the grammar's list header."""
    found = _sandbox_sentences(response)
    if found is None:
        if response.lstrip().startswith(("- ", "* ")):
            return None
        parts = [s for s in re.split(r"(?<=[.!?])\s+", response.strip()) if s]
        return "\n".join(f"- {s}" for s in parts) if parts else None
    parsed, sentences = found
    return None if parsed.as_list else _sandbox_join(sentences, True)


def confident(response: str, rng: random.Random) -> str | None:
    """Add confident phrasing ("trust me on this .") after the claim of an unhedged answer."""
    found = _sandbox_sentences(response)
    if found is None:
        return f"I am completely certain about this. {response.lstrip()}"
    parsed, sentences = found
    if parsed.kind != "answer" or parsed.hedges or parsed.confident:
        return None
    sentences.insert(_core_index(sentences) + 1, rng.choice(g.CONFIDENT_SENTENCES))
    return _sandbox_join(sentences, parsed.as_list)


PROBE_EDITS: dict[str, ProbeEdit] = {
    "filler": filler,
    "hedge": hedge,
    "list": as_list,
    "confident": confident,
}
