"""A deterministic stand-in for an AI judge, with the position bias real LLM judges show.

It judges from gold-like signals plus a constant pull toward whichever response it is shown
first, so swapping the order flips a measurable share of close verdicts (Zheng et al. 2023
report 12.9% for GPT-4; the default bias gives a similar share on SFT-style pairs).
``judge_both_orders`` applies the usual order-swap debiasing.

    >>> from tether.sandbox.world import generate_prompts
    >>> prompt = generate_prompts(seed=0, n=1)[0]
    >>> PositionBiasedJudge().judge(prompt, "i do not know .", "i do not know .").choice
    'A'
"""

from __future__ import annotations

from dataclasses import dataclass

from tether.sandbox.gold import grade
from tether.sandbox.grammar import count_words
from tether.sandbox.raters import Choice, SimJudgment
from tether.sandbox.world import SandboxPrompt, stable_rng

JITTER = 0.02
"""Largest order-independent perturbation of the gold gap, so equal-utility pairs are not all alike."""


@dataclass(frozen=True)
class OrderedVerdict:
    """The combination of a judgment in both presentation orders."""

    judgment: SimJudgment
    """Debiased verdict in the caller's A/B order: a tie when the two orders disagree."""
    position_consistent: bool
    """Both orders preferred the same response."""
    as_shown: SimJudgment
    """Verdict with A shown first."""
    swapped: SimJudgment
    """Verdict with B shown first, its choice mapped back to the caller's A/B."""


def _jitter(prompt: SandboxPrompt, first: str, second: str) -> float:
    """A deterministic perturbation of gap(first - second) that flips sign when the order flips."""
    low, high = sorted((first, second))
    value = stable_rng("judge-jitter", prompt.id, prompt.text, low, high).uniform(-JITTER, JITTER)
    return value if first == low else -value


class PositionBiasedJudge:
    """Prefers the gold-better response, but gives the first-shown one ``position_bias`` of utility."""

    def __init__(self, *, position_bias: float = 0.013, name: str = "ai-judge") -> None:
        self.position_bias = position_bias
        self.name = name

    def judge(self, prompt: SandboxPrompt, first: str, second: str) -> SimJudgment:
        """Verdict on a pair; choice "A" means the response shown first."""
        gap = grade(prompt, first).utility - grade(prompt, second).utility
        delta = gap + _jitter(prompt, first, second) + self.position_bias
        choice: Choice = "A" if delta > 0 else "B" if delta < 0 else "tie"
        strength = 1 if abs(delta) < 0.15 else 2 if abs(delta) < 0.4 else 3
        seconds = 1.0 + 0.02 * (count_words(first) + count_words(second))
        return SimJudgment(choice, strength, _rationale(choice, gap), seconds)


def _rationale(choice: Choice, gap: float) -> str:
    if choice == "tie":
        return "The two responses are equally good on every dimension."
    shown = "first" if choice == "A" else "second"
    margin = gap if choice == "A" else -gap
    if margin > 0.2:
        return f"The {shown} response is clearly better against the rubric."
    return f"The responses are close; the {shown} one is slightly preferable."


def _mirror(choice: Choice) -> Choice:
    return "B" if choice == "A" else "A" if choice == "B" else "tie"


def judge_both_orders(
    judge: PositionBiasedJudge, prompt: SandboxPrompt, response_a: str, response_b: str
) -> OrderedVerdict:
    """Judge A-then-B and B-then-A; keep the verdict only when both orders agree."""
    as_shown = judge.judge(prompt, response_a, response_b)
    raw = judge.judge(prompt, response_b, response_a)
    swapped = SimJudgment(_mirror(raw.choice), raw.strength, raw.rationale, raw.seconds)
    consistent = as_shown.choice == swapped.choice
    if consistent:
        verdict = as_shown
    else:
        reason = "The verdict flips when the order is swapped, so this counts as a tie."
        verdict = SimJudgment("tie", 1, reason, as_shown.seconds + swapped.seconds)
    return OrderedVerdict(verdict, consistent, as_shown, swapped)
