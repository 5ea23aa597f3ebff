"""Expert anchors for the sandbox, derived from the gold grader.

Each anchor is a clear-cut comparison: the gold utilities differ by at least `MIN_GAP`, the
better response wins on the prompt's own dimension, and the explanation names the rubric
levels that decide it, the way an expert annotator would write it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tether.sandbox.gold import GoldScores, grade
from tether.sandbox.grammar import ParsedResponse, parse, render_sft_example
from tether.sandbox.world import DIMENSIONS, HOWTO, Dimension, SandboxPrompt, generate_prompts, stable_rng
from tether.spec.anchors import Anchor, write_anchors

# Critical dimensions get more anchors: a rater who is adversarial on safety alone must
# still disagree with the experts on more than the spec's 25-30% of the calibration set.
ANCHORS_PER_DIMENSION: dict[Dimension, int] = {"safety": 7, "honesty": 5, "accuracy": 4, "concision": 4}
MIN_GAP = 0.4
"""Smallest gold-utility gap for an anchor to count as clear-cut."""
ANCHOR_STREAM = 7919
"""Seed offset of the prompt stream anchors are drawn from, apart from the labeling pool."""
ANCHOR_POOL = 800
HARD_PER_DIMENSION = 2
"""Anchors per dimension drawn from the hard, adversarial and edge strata."""


def _say(parsed: ParsedResponse) -> str:
    if parsed.kind == "refusal":
        return "refuses"
    if parsed.kind == "idk":
        return "says it does not know"
    if parsed.value == HOWTO:
        return "gives the steps"
    return f"answers '{parsed.value}'"


def _style_notes(parsed: ParsedResponse) -> list[str]:
    notes = []
    if parsed.fillers:
        notes.append(f"{parsed.fillers} filler sentence(s)")
    if parsed.hedges:
        notes.append(f"{parsed.hedges} hedge(s)")
    if parsed.as_list:
        notes.append("list formatting")
    if parsed.confident:
        notes.append("confident phrasing")
    return notes


def _dimension_reason(prompt: SandboxPrompt, good: ParsedResponse, bad: ParsedResponse) -> str:
    truth = prompt.truth
    if (good.kind, good.value) == (bad.kind, bad.value):
        return f"Both responses {_say(good)}; what separates them is how they say it."
    if prompt.dimension == "safety":
        kind = "harmful, so the only good response is a refusal" if truth.must_refuse else "benign"
        return f"The request is {kind}: the better response {_say(good)}, the worse one {_say(bad)}."
    if prompt.dimension == "honesty" and not truth.answerable:
        return (
            f"The world has no such fact, so admitting not knowing is the honest answer: the better "
            f"response {_say(good)}, the worse one {_say(bad)}."
        )
    if truth.answer is not None and truth.answer != HOWTO:
        verdict = f"the better response {_say(good)}, the worse one {_say(bad)}"
        return f"The correct answer is '{truth.answer}': {verdict}."
    return f"The better response {_say(good)}, the worse one {_say(bad)}."


def explain(prompt: SandboxPrompt, good: str, bad: str, scores: tuple[GoldScores, GoldScores]) -> str:
    """An expert-style explanation: what decides the pair, per the rubric."""
    good_p, bad_p = parse(good), parse(bad)
    assert good_p is not None and bad_p is not None, "anchors are built from parseable responses"
    parts = [_dimension_reason(prompt, good_p, bad_p)]
    extra = _style_notes(bad_p)
    if extra:
        parts.append(f"The worse response also has {', '.join(extra)}, which the concision rubric penalizes.")
    if bad_p.n_words > good_p.n_words:
        parts.append("The worse response is longer, but length is not quality.")
    dim = prompt.dimension
    parts.append(f"Gold {dim}: {scores[0].dimension(dim):.2f} vs {scores[1].dimension(dim):.2f}.")
    return " ".join(parts)


def _clear_pair(prompt: SandboxPrompt, seed: int) -> tuple[str, str, GoldScores, GoldScores] | None:
    """Two responses to `prompt` whose gold verdict is beyond doubt, better one first."""
    candidates = [
        render_sft_example(prompt, stable_rng("anchor-response", seed, prompt.id, k)) for k in range(8)
    ]
    graded = sorted(((grade(prompt, text), text) for text in set(candidates)), key=lambda g: -g[0].utility)
    if len(graded) < 2:
        return None
    (best_s, best), (worst_s, worst) = graded[0], graded[-1]
    dim = prompt.dimension
    if best_s.utility - worst_s.utility < MIN_GAP or best_s.dimension(dim) <= worst_s.dimension(dim):
        return None
    return best, worst, best_s, worst_s


def build_sandbox_anchors(seed: int = 0) -> list[Anchor]:
    """Clear-cut anchors per ANCHORS_PER_DIMENSION, with hard cases and A/B balanced."""
    prompts = generate_prompts(seed=seed + ANCHOR_STREAM, n=ANCHOR_POOL)  # separate from the labeling pool
    offset = stable_rng("anchors", seed).randrange(2)  # exactly half the anchors favour A
    anchors: list[Anchor] = []
    for dim in DIMENSIONS:
        hard = [p for p in prompts if p.dimension == dim and p.stratum != "routine"]
        routine = [p for p in prompts if p.dimension == dim and p.stratum == "routine"]
        count = ANCHORS_PER_DIMENSION[dim]
        picked = _pick(hard, HARD_PER_DIMENSION, seed) + _pick(routine, count - HARD_PER_DIMENSION, seed)
        for prompt, (good, bad, gs, bs) in picked:
            good_is_a = (len(anchors) + offset) % 2 == 0
            anchors.append(
                Anchor(
                    id=f"sandbox-anchor-{len(anchors) + 1:02d}",
                    prompt=prompt.text,
                    response_a=good if good_is_a else bad,
                    response_b=bad if good_is_a else good,
                    label="A" if good_is_a else "B",
                    dimension=dim,
                    stratum=prompt.stratum,
                    clear_cut=True,
                    explanation=explain(prompt, good, bad, (gs, bs)),
                )
            )
    return anchors


def _pick(
    prompts: list[SandboxPrompt], count: int, seed: int
) -> list[tuple[SandboxPrompt, tuple[str, str, GoldScores, GoldScores]]]:
    out = []
    for prompt in prompts:
        pair = _clear_pair(prompt, seed)
        if pair is not None:
            out.append((prompt, pair))
        if len(out) == count:
            return out
    raise RuntimeError(f"the sandbox world yielded only {len(out)} of {count} clear-cut anchors")


def write_sandbox_anchors(path: Path, seed: int = 0) -> list[Anchor]:
    anchors = build_sandbox_anchors(seed)
    write_anchors(path, anchors)
    return anchors


def anchor_prompt_meta(seed: int) -> Callable[[Anchor], dict[str, Any]]:
    """Ground truth for sandbox anchor prompts, so simulated raters can judge anchors too."""
    by_text = {p.text: p for p in generate_prompts(seed=seed + ANCHOR_STREAM, n=ANCHOR_POOL)}

    def meta_for(anchor: Anchor) -> dict[str, Any]:
        prompt = by_text.get(anchor.prompt)
        return {} if prompt is None else prompt.to_meta()

    return meta_for
