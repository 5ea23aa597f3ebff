"""The response grammar: the sentences a sandbox assistant can say, rendered and parsed back.

A response is one core sentence (an answer, the steps of a how-to, a refusal or "i do not
know") with optional style around it: hedges, confident phrasing, filler sentences and list
formatting. The style is what biased raters react to and what gold grading mostly ignores,
so RL against a biased reward can learn to pile it on.

    >>> parse("i think the answer is 12 . i hope this helps .").fillers
    1
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Literal

from tether.sandbox.facts import ANIMALS, COLORS, COUNTRIES, FLOWERS, FOODS
from tether.sandbox.world import HOWTO, MAX_NUMBER, PromptTruth, SandboxPrompt

Kind = Literal["answer", "refusal", "idk"]

PUNCTUATION = frozenset({".", ",", "?", ":", "-"})
HEDGE_PREFIXES = ("i think", "it may be that", "perhaps")
HEDGE_SENTENCES = ("i am not sure about this .", "please double check this .")
CONFIDENT_SENTENCES = ("i am completely sure .", "there is no doubt about it .", "trust me on this .")
OPENERS = (
    "thanks for asking .",
    "this is a great question .",
    "that is an interesting one .",
    "i am happy to help .",
)
CLOSERS = (
    "i hope this helps .",
    "let me know if you need more .",
    "good luck with it .",
    "feel free to ask again .",
)
FILLERS = OPENERS + CLOSERS
REFUSALS = ("i can not help with that .", "sorry , i can not help with that .", "i will not help with this .")
IDKS = ("i do not know .", "i do not know the answer .", "i have no information about that .")
COMPLIANCES = (
    "sure , here is how : first get what you need , then do it step by step .",
    "here is how : first make a plan , then do it slowly and carefully .",
)
LIST_HEADER = "here is my answer as a list :"
MAX_FILLERS = 4
MAX_HEDGES = 2

_VALUE = re.compile(r"^[a-z0-9]+$")
_ANSWER = re.compile(r"^(?:(" + "|".join(HEDGE_PREFIXES) + r") )?the answer is ([a-z0-9]+) \.$")
_FILLER_SET = frozenset(FILLERS)
_HEDGE_SET = frozenset(HEDGE_SENTENCES)
_CONFIDENT_SET = frozenset(CONFIDENT_SENTENCES)
_CORES: dict[str, tuple[Kind, str | None]] = {
    **{s: ("refusal", None) for s in REFUSALS},
    **{s: ("idk", None) for s in IDKS},
    **{s: ("answer", HOWTO) for s in COMPLIANCES},
}


@dataclass(frozen=True)
class ResponseStyle:
    """What a response says and how: the input of ``render``."""

    kind: Kind
    value: str | None = None
    """Answer token for ``kind="answer"`` (``HOWTO`` means giving the steps of a how-to)."""
    hedges: int = 0
    fillers: int = 0
    as_list: bool = False
    confident: bool = False

    def __post_init__(self) -> None:
        if self.kind == "answer" and (self.value is None or not _VALUE.match(self.value)):
            raise ValueError(f"an answer needs a single lowercase token as value, got {self.value!r}")
        if self.kind != "answer" and (self.value is not None or self.hedges or self.confident):
            raise ValueError(f"a {self.kind} takes no value, hedges or confident phrasing")
        if not 0 <= self.hedges <= MAX_HEDGES or not 0 <= self.fillers <= MAX_FILLERS:
            raise ValueError(f"hedges must be 0..{MAX_HEDGES} and fillers 0..{MAX_FILLERS}")
        if self.hedges and (self.confident or self.value == HOWTO):
            raise ValueError("hedges go with a plain answer, never with confident phrasing or steps")


@dataclass(frozen=True)
class ParsedResponse:
    """A response read back under the grammar."""

    kind: Kind
    value: str | None
    hedges: int
    fillers: int
    as_list: bool
    confident: bool
    n_words: int


def count_words(text: str) -> int:
    """Number of word tokens (punctuation tokens excluded)."""
    return sum(1 for token in text.split() if token not in PUNCTUATION)


def _core_sentence(style: ResponseStyle, rng: random.Random) -> str:
    if style.kind == "refusal":
        return rng.choice(REFUSALS)
    if style.kind == "idk":
        return rng.choice(IDKS)
    if style.value == HOWTO:
        return rng.choice(COMPLIANCES)
    prefix = f"{rng.choice(HEDGE_PREFIXES)} " if style.hedges else ""
    return f"{prefix}the answer is {style.value} ."


def render(style: ResponseStyle, prompt: SandboxPrompt, rng: random.Random) -> str:
    """Render ``style`` as text; all wording choices come from ``rng``."""
    is_howto = prompt.truth.answer_type == "howto"
    if style.kind == "answer" and (style.value == HOWTO) != is_howto:
        raise ValueError(f"prompt {prompt.id}: steps answer a how-to request and only a how-to request")
    middle = [_core_sentence(style, rng)]
    if style.hedges == 2:
        middle.append(rng.choice(HEDGE_SENTENCES))
    if style.confident:
        middle.append(rng.choice(CONFIDENT_SENTENCES))
    n_open = rng.randint(0, style.fillers)
    opening = rng.sample(OPENERS, n_open)
    closing = rng.sample(CLOSERS, style.fillers - n_open)
    sentences = opening + middle + closing
    if style.as_list:
        return f"{LIST_HEADER} " + " ".join(f"- {s}" for s in sentences)
    return " ".join(sentences)


def _sentences(tokens: list[str]) -> list[str] | None:
    sentences: list[str] = []
    current: list[str] = []
    for token in tokens:
        current.append(token)
        if token == ".":
            sentences.append(" ".join(current))
            current = []
    # Leftover tokens mean the response was cut off mid-sentence.
    return None if current else sentences


def _split(text: str) -> tuple[list[str], bool] | None:
    tokens = text.split()
    header = LIST_HEADER.split()
    as_list = tokens[: len(header)] == header
    sentences = _sentences(tokens[len(header) :] if as_list else tokens)
    if not sentences:
        return None
    dashed = [s.startswith("- ") for s in sentences]
    if any(dashed) != as_list or (as_list and not all(dashed)):
        return None
    return ([s[2:] for s in sentences] if as_list else sentences), as_list


def parse(text: str) -> ParsedResponse | None:
    """Read ``text`` under the grammar; None for anything it does not generate. Never raises."""
    split = _split(text) if isinstance(text, str) else None
    if split is None:
        return None
    sentences, as_list = split
    cores: list[tuple[Kind, str | None]] = []
    hedges = fillers = confident = 0
    for sentence in sentences:
        match = _ANSWER.match(sentence)
        if match:
            cores.append(("answer", match.group(2)))
            hedges += match.group(1) is not None
        elif sentence in _CORES:
            cores.append(_CORES[sentence])
        elif sentence in _FILLER_SET:
            fillers += 1
        elif sentence in _HEDGE_SET:
            hedges += 1
        elif sentence in _CONFIDENT_SET:
            confident += 1
        else:
            return None
    # One claim per response; sounding both sure and unsure is a contradiction, not a style.
    if len(cores) != 1 or confident > 1 or (confident and hedges):
        return None
    kind, value = cores[0]
    return ParsedResponse(kind, value, hedges, fillers, as_list, bool(confident), count_words(text))


def style_features(parsed: ParsedResponse) -> dict[str, float]:
    """Surface features that biased raters and hacking monitors look at."""
    return {
        "n_words": float(parsed.n_words),
        "fillers": float(parsed.fillers),
        "hedges": float(parsed.hedges),
        "as_list": float(parsed.as_list),
        "confident": float(parsed.confident),
    }


# ---------------------------------------------------------------------------------------------
# The SFT mix: deliberately mediocre and diverse, so a reward model has something to learn
# and RL has room both to improve and to hack.
_FILLER_WEIGHTS = (0.35, 0.2, 0.2, 0.15, 0.1)


def _pool_for(truth: PromptTruth) -> tuple[str, ...]:
    pools: dict[str, tuple[str, ...]] = {
        "capital": tuple(c.capital for c in COUNTRIES),
        "country": tuple(c.name for c in COUNTRIES),
        "color": COLORS,
        "animal": ANIMALS,
        "flower": FLOWERS,
        "food": FOODS,
        "yesno": ("yes", "no"),
    }
    return pools.get(truth.answer_type, ())


def plausible_wrong(truth: PromptTruth, rng: random.Random) -> str:
    """A wrong answer of the right type: an off-by-a-little number or another table value."""
    if truth.answer_type == "number":
        if truth.answer is None:
            return str(rng.randint(1, MAX_NUMBER))
        correct = int(truth.answer)
        nearby = [correct + d for d in (-2, -1, 1, 2, 10) if 0 <= correct + d <= MAX_NUMBER]
        return str(rng.choice(nearby))
    candidates = [v for v in _pool_for(truth) if v != truth.answer]
    return rng.choice(candidates) if candidates else str(rng.randint(1, MAX_NUMBER))


def _sft_claim(truth: PromptTruth, rng: random.Random) -> tuple[Kind, str | None]:
    roll = rng.random()
    if truth.answer_type == "howto":
        refuse = 0.5 if truth.must_refuse else 0.3
        return ("refusal", None) if roll < refuse else ("answer", HOWTO)
    if not truth.answerable:
        return ("idk", None) if roll < 0.35 else ("answer", plausible_wrong(truth, rng))
    if roll < 0.04:
        return "refusal", None
    if roll < 0.14:
        return "idk", None
    if roll < 0.70:
        return "answer", truth.answer
    return "answer", plausible_wrong(truth, rng)


def sample_sft_style(prompt: SandboxPrompt, rng: random.Random) -> ResponseStyle:
    """Draw a response style from the SFT mix for ``prompt``."""
    kind, value = _sft_claim(prompt.truth, rng)
    fillers = rng.choices(range(MAX_FILLERS + 1), weights=_FILLER_WEIGHTS)[0]
    as_list = rng.random() < 0.2
    if kind != "answer":
        return ResponseStyle(kind, None, 0, fillers, as_list, False)
    hedges = 0
    if value != HOWTO and rng.random() < 0.3:
        hedges = 1 if rng.random() < 0.7 else 2
    confident = not hedges and rng.random() < 0.25
    return ResponseStyle(kind, value, hedges, fillers, as_list, confident)


def render_sft_example(prompt: SandboxPrompt, rng: random.Random) -> str:
    """One SFT training response for ``prompt``."""
    return render(sample_sft_style(prompt, rng), prompt, rng)
