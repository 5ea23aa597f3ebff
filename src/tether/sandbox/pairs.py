"""Measurements of simulated raters against the gold preference.

Used by ``tether sandbox check`` and the sandbox tests: do good raters agree with gold on
clear-cut pairs, how often do raters agree with each other, and do length-biased raters
really prefer longer responses when the content is a toss-up?
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

from tether.sandbox.gold import grade
from tether.sandbox.grammar import count_words, render_sft_example
from tether.sandbox.raters import SimJudgment, SimulatedRater
from tether.sandbox.world import SandboxPrompt, stable_rng

Pair = tuple[SandboxPrompt, str, str]
CLEAR_GAP = 0.2
"""Gold utility gap above which a pair is clear-cut."""
MAX_REDRAWS = 20


def sample_pairs(prompts: Sequence[SandboxPrompt], *, n: int, seed: int) -> list[Pair]:
    """Two distinct SFT-style responses for each of ``n`` prompts drawn from ``prompts``."""
    if n > len(prompts):
        raise ValueError(f"asked for {n} pairs but only {len(prompts)} prompts were given")
    chosen = stable_rng("pairs", seed).sample(list(prompts), n)
    pairs: list[Pair] = []
    for prompt in chosen:
        rng = stable_rng("pair", seed, prompt.id, prompt.text)
        first = render_sft_example(prompt, rng)
        second = render_sft_example(prompt, rng)
        for _ in range(MAX_REDRAWS):
            if second != first:
                break
            second = render_sft_example(prompt, rng)
        if second != first:
            pairs.append((prompt, first, second))
    return pairs


def item_id(index: int, pair: Pair) -> str:
    """Stable item id of the ``index``-th pair, used to seed rater judgments."""
    return f"{pair[0].id}#{index}"


def gold_gaps(pairs: Sequence[Pair]) -> list[float]:
    """Gold utility of A minus that of B for each pair."""
    return [grade(p, a).utility - grade(p, b).utility for p, a, b in pairs]


def _judgments(rater: SimulatedRater, pairs: Sequence[Pair]) -> list[SimJudgment]:
    return [rater.judge(p, a, b, item_id=item_id(i, (p, a, b))) for i, (p, a, b) in enumerate(pairs)]


def gold_agreement(
    rater: SimulatedRater,
    pairs: Sequence[Pair],
    *,
    clear_gap: float = CLEAR_GAP,
    gaps: Sequence[float] | None = None,
) -> float:
    """Share of clear-cut pairs (|gold gap| > clear_gap, rater not tied) where the rater picks gold's choice.

    Pass precomputed ``gaps`` (from ``gold_gaps``) to avoid regrading when measuring many raters.
    """
    gaps = gold_gaps(pairs) if gaps is None else gaps
    hits = total = 0
    for judgment, gap in zip(_judgments(rater, pairs), gaps, strict=True):
        if abs(gap) <= clear_gap or judgment.choice == "tie":
            continue
        total += 1
        hits += judgment.choice == ("A" if gap > 0 else "B")
    return hits / total if total else float("nan")


def pool_pairwise_agreement(raters: Sequence[SimulatedRater], pairs: Sequence[Pair]) -> float:
    """Over all rater pairs and items, the share where both made the same choice (tie included)."""
    choices = [[j.choice for j in _judgments(r, pairs)] for r in raters]
    same = total = 0
    for first, second in combinations(choices, 2):
        same += sum(x == y for x, y in zip(first, second, strict=True))
        total += len(first)
    return same / total if total else float("nan")


def length_preference(
    rater: SimulatedRater,
    pairs: Sequence[Pair],
    *,
    tolerance: float = 0.05,
    gaps: Sequence[float] | None = None,
) -> float:
    """Share of near ties (|gold gap| <= tolerance) of unequal length where the rater picks the longer."""
    gaps = gold_gaps(pairs) if gaps is None else gaps
    longer = total = 0
    for (_, a, b), judgment, gap in zip(pairs, _judgments(rater, pairs), gaps, strict=True):
        words_a, words_b = count_words(a), count_words(b)
        if abs(gap) > tolerance or words_a == words_b or judgment.choice == "tie":
            continue
        total += 1
        longer += judgment.choice == ("A" if words_a > words_b else "B")
    return longer / total if total else float("nan")
