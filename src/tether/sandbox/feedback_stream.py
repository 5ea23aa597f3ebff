"""Flagged production traffic from the sandbox world: `tether sandbox feedback-stream`.

    tether sandbox feedback-stream --out flagged.jsonl --n 1000            # in-distribution
    tether sandbox feedback-stream --out drifted.jsonl --n 1000 --shift    # a shifted prompt mix

Prompts are drawn fresh from the world (`generate_prompts` under a seed derived from the stream's own,
never the world's build seed), so they are new prompts, not the training prompts again.
In-distribution means the mix the reward model trains on: the labeling plan's quotas (the spec's
`labeling.hard_case_share` of hard, adversarial and edge prompts, the rest routine, dimensions evenly).
`--shift` sends mostly adversarial safety prompts (SHIFT_MIX) and edge honesty prompts, with the
in-distribution mix only for the rest. Each item answers its prompt twice (from the SFT policy, or from
the SFT grammar without a model) and keeps the worse answer by gold utility, since users flag bad
answers; its flag reason names the prompt's dimension, and `meta` holds the prompt's ground truth.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tether.errors import TetherInputError
from tether.labeling.plan import HARD_STRATA, plan_quotas
from tether.sandbox.gold import grade
from tether.sandbox.grammar import render_sft_example
from tether.sandbox.world import DIMENSIONS, SandboxPrompt, generate_prompts, stable_rng
from tether.spec.model import LabelingPolicy

Cell = tuple[str, str]
"""(dimension, stratum)."""
Respond = Callable[[list[SandboxPrompt], int], list[str]]
"""One response per prompt, given a sampling seed."""

SHIFT_MIX: dict[Cell, float] = {("safety", "adversarial"): 0.45, ("honesty", "edge"): 0.35}
"""Shares of a shifted stream; the remaining 20% follow the in-distribution mix."""
REASONS = {
    "accuracy": "accuracy: the user says the answer is wrong",
    "safety": "safety: reported as harmful, or as refusing a harmless request",
    "honesty": "honesty: the user says the model made this up",
    "concision": "concision: the user found the answer padded",
}
USER_LOCALES = ("en", "de", "fr", "ja")


def stream_seed(seed: int) -> int:
    """The prompt seed of a stream: derived by a stable hash, so it never equals a world's build seed."""
    digest = hashlib.blake2b(f"feedback-stream\x1f{seed}".encode(), digest_size=4).digest()
    return 1_000_000 + int.from_bytes(digest, "big")


def in_distribution_cells(n: int, policy: LabelingPolicy, rng: random.Random) -> Counter[Cell]:
    """Prompts per (dimension, stratum) in the labeling plan's mix; hard slots pick a hard stratum."""
    cells: Counter[Cell] = Counter()
    for (dimension, group), count in plan_quotas(n, list(DIMENSIONS), policy).items():
        for _ in range(count):
            cells[(dimension, rng.choice(HARD_STRATA) if group == "hard" else "routine")] += 1
    return cells


def shifted_cells(n: int, policy: LabelingPolicy, rng: random.Random) -> Counter[Cell]:
    cells = Counter({cell: round(share * n) for cell, share in SHIFT_MIX.items()})
    rest = n - sum(cells.values())
    return cells + in_distribution_cells(rest, policy, rng) if rest > 0 else cells


def draw_prompts(cells: Counter[Cell], *, seed: int) -> list[SandboxPrompt]:
    """Distinct fresh prompts filling `cells`, in a seeded random order."""
    total = 4 * sum(cells.values())
    while True:
        try:
            drawn = generate_prompts(seed=stream_seed(seed), n=total)
        except ValueError:
            raise TetherInputError(
                "the sandbox world cannot supply that many distinct prompts; lower --n"
            ) from None
        by_cell: dict[Cell, list[SandboxPrompt]] = defaultdict(list)
        for prompt in drawn:
            by_cell[(prompt.dimension, prompt.stratum)].append(prompt)
        if all(len(by_cell[cell]) >= k for cell, k in cells.items()):
            break
        total *= 2
    prompts = [p for cell, k in sorted(cells.items()) for p in by_cell[cell][:k]]
    stable_rng("stream-order", seed).shuffle(prompts)
    return prompts


def grammar_responses(prompts: list[SandboxPrompt], seed: int) -> list[str]:
    """SFT-style responses from the grammar, without a model."""
    return [render_sft_example(p, stable_rng("stream-response", seed, p.id)) for p in prompts]


def policy_responses(policy_dir: Path) -> Respond:
    """Responses sampled from the policy checkpoint at `policy_dir`."""
    from tether.hf import load_causal_lm
    from tether.sandbox.policy import sample_responses

    model, tokenizer = load_causal_lm(policy_dir)
    return lambda prompts, seed: sample_responses(model, tokenizer, [p.text for p in prompts], seed=seed)


def _worse(prompt: SandboxPrompt, first: str, second: str) -> str:
    return first if grade(prompt, first).utility <= grade(prompt, second).utility else second


def stream_items(
    prompts: Sequence[SandboxPrompt], respond: Respond, *, seed: int, model_version: str, shift: bool
) -> list[dict[str, Any]]:
    """One flagged item per prompt, as `tether feedback ingest` reads them."""
    first, second = respond(list(prompts), 2 * seed), respond(list(prompts), 2 * seed + 1)
    rng = stable_rng("stream-users", seed)
    tag = "shift" if shift else "iid"
    return [
        {
            "idempotency_key": f"sbx-{tag}-s{seed}-{i:06d}",
            "prompt": p.text,
            "response": _worse(p, a, b),
            "model_version": model_version,
            "reason": REASONS[p.dimension],
            "user_metadata": {"user": f"u{rng.randrange(10**6):06d}", "locale": rng.choice(USER_LOCALES)},
            "meta": p.to_meta(),
        }
        for i, (p, a, b) in enumerate(zip(prompts, first, second, strict=True))
    ]


def write_stream(path: Path, items: Sequence[dict[str, Any]]) -> None:
    """Write JSONL atomically: a half-written stream never appears under its name."""
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text("".join(json.dumps(item, sort_keys=True) + "\n" for item in items), encoding="utf-8")
    tmp.replace(path)


def feedback_stream(
    *, n: int, shift: bool, seed: int, policy: LabelingPolicy, respond: Respond, model_version: str
) -> list[dict[str, Any]]:
    """`n` flagged items: in-distribution, or with a shifted prompt mix."""
    if n < 1:
        raise TetherInputError(f"--n must be at least 1, got {n}")
    rng = stable_rng("stream-cells", seed, shift)
    cells = shifted_cells(n, policy, rng) if shift else in_distribution_cells(n, policy, rng)
    prompts = draw_prompts(cells, seed=seed)
    return stream_items(prompts, respond, seed=seed, model_version=model_version, shift=shift)


def write_sandbox_stream(
    path: Path,
    project_policy: LabelingPolicy,
    *,
    n: int,
    shift: bool,
    seed: int,
    policy_dir: Path | None,
    model_version: str,
) -> int:
    """Write a stream to `path`, answered by the policy at `policy_dir` (None: the grammar); returns n."""
    respond = grammar_responses if policy_dir is None else policy_responses(policy_dir)
    items = feedback_stream(
        n=n, shift=shift, seed=seed, policy=project_policy, respond=respond, model_version=model_version
    )
    write_stream(path, items)
    return len(items)
