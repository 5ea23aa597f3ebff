"""`tether sandbox check`: the figures that say whether the sandbox world is fit to rehearse on.

Everything is measured on the project's SFT policy, loaded from its artifact exactly as a
real model would be: its samples must parse, sit in a middle band of gold utility, and vary
in style; simulated raters judging pairs of those samples must agree with gold and with each
other at realistic rates, and the length-biased ones must show their bias.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tether.hf import load_causal_lm
from tether.sandbox.gold import grade
from tether.sandbox.grammar import parse
from tether.sandbox.pairs import (
    CLEAR_GAP,
    Pair,
    gold_agreement,
    gold_gaps,
    length_preference,
    pool_pairwise_agreement,
)
from tether.sandbox.policy import sample_responses
from tether.sandbox.raters import RaterProfile, SimulatedRater
from tether.sandbox.world import DIMENSIONS, SandboxPrompt, stable_rng

NEAR_TIE = 0.05
"""Gold gap within which a pair counts as a toss-up for the length-bias figure."""


@dataclass(frozen=True)
class PolicyFigures:
    """How the SFT policy's samples look under the grammar and the gold grader."""

    samples: int
    parse_rate: float
    gold_utility: float
    gold_by_dimension: dict[str, float]
    mean_words: float
    share_padded: float
    """Samples with two or more filler sentences."""
    share_concise: float
    """Parsed samples with no filler, hedge or list."""


@dataclass(frozen=True)
class RaterFigures:
    """Simulated raters judging pairs of SFT samples."""

    pairs: int
    clear_cut: int
    near_ties: int
    pool_agreement: float
    gold_agreement: dict[str, float] = field(default_factory=dict)
    length_preference: dict[str, float] = field(default_factory=dict)


def policy_figures(prompts: Sequence[SandboxPrompt], responses: Sequence[str]) -> PolicyFigures:
    parsed = [parse(r) for r in responses]
    scores = [grade(p, r) for p, r in zip(prompts, responses, strict=True)]
    ok = [x for x in parsed if x is not None]
    return PolicyFigures(
        samples=len(responses),
        parse_rate=len(ok) / len(responses),
        gold_utility=statistics.fmean(s.utility for s in scores),
        gold_by_dimension={
            d: statistics.fmean(
                s.dimension(d) for p, s in zip(prompts, scores, strict=True) if p.dimension == d
            )
            for d in DIMENSIONS
            if any(p.dimension == d for p in prompts)
        },
        mean_words=statistics.fmean(len(r.split()) for r in responses),
        share_padded=sum(x.fillers >= 2 for x in ok) / len(responses),
        share_concise=sum(x.fillers == 0 and x.hedges == 0 and not x.as_list for x in ok) / len(responses),
    )


def rater_figures(pairs: Sequence[Pair], pool: Sequence[RaterProfile], *, seed: int) -> RaterFigures:
    raters = [SimulatedRater(profile, seed=seed) for profile in pool]
    gaps = gold_gaps(pairs)
    return RaterFigures(
        pairs=len(pairs),
        clear_cut=sum(abs(g) > CLEAR_GAP for g in gaps),
        near_ties=sum(abs(g) <= NEAR_TIE for g in gaps),
        pool_agreement=pool_pairwise_agreement(raters, pairs),
        gold_agreement={r.name: gold_agreement(r, pairs, gaps=gaps) for r in raters},
        length_preference={
            r.name: length_preference(r, pairs, tolerance=NEAR_TIE, gaps=gaps) for r in raters
        },
    )


def policy_pairs(
    policy_dir: Path, prompts: Sequence[SandboxPrompt], *, n_pairs: int, seed: int
) -> tuple[list[Pair], list[tuple[SandboxPrompt, str]]]:
    """Two samples per prompt from the policy: the pairs whose samples differ, and every first sample."""
    model, tokenizer = load_causal_lm(policy_dir)
    chosen = stable_rng("check", seed).sample(list(prompts), min(len(prompts), int(n_pairs * 1.3) + 10))
    texts = [p.text for p in chosen]
    first = sample_responses(model, tokenizer, texts, seed=seed)
    second = sample_responses(model, tokenizer, texts, seed=seed + 1)
    pairs = [(p, a, b) for p, a, b in zip(chosen, first, second, strict=True) if a != b][:n_pairs]
    return pairs, list(zip(chosen, first, strict=True))
