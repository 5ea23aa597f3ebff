"""Reward-stage fixtures: a tiny untrained reward checkpoint and sandbox preference rows.

The checkpoint is what `tether rm train` writes, minus the training: a one-layer GPT-2 sequence
classifier with one label, saved with safetensors beside a word-level tokenizer that knows the
sandbox's vocabulary. Its rewards are arbitrary but deterministic, which is all that scoring,
evaluation plumbing and the CLI need.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tether.labeling.export import PreferenceRow
from tether.sandbox import grammar as g
from tether.sandbox.gold_pairs import gold_side
from tether.sandbox.world import SandboxPrompt, generate_prompts


def sandbox_vocabulary_texts() -> list[str]:
    """Texts covering the sandbox's words: prompts and every fixed phrase of the grammar."""
    phrases = [
        *g.HEDGE_PREFIXES,
        *g.HEDGE_SENTENCES,
        *g.CONFIDENT_SENTENCES,
        *g.FILLERS,
        *g.REFUSALS,
        *g.IDKS,
        *g.COMPLIANCES,
        g.LIST_HEADER,
        "- the answer is",
        " ".join(str(n) for n in range(201)),
    ]
    prompts = generate_prompts(seed=0, n=400)
    rng = random.Random(0)
    responses = [g.render_sft_example(p, rng) for p in prompts for _ in range(3)]
    return phrases + [p.text for p in prompts] + responses


def save_tiny_reward_model(path: Path, *, seed: int = 0) -> Path:
    """A tiny GPT-2 reward checkpoint (num_labels=1, pad token set) saved like `tether rm train` saves."""
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification

    from tether.sandbox.policy import train_tokenizer

    tokenizer = train_tokenizer(sandbox_vocabulary_texts())
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=128,
        n_embd=32,
        n_layer=1,
        n_head=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    config.num_labels = 1
    torch.manual_seed(seed)
    model = GPT2ForSequenceClassification(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    (path / "tether_reward.json").write_text(json.dumps({"format": 1, "export": {}}), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_rm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_reward_model(tmp_path_factory.mktemp("rm") / "tiny-rm")


@pytest.fixture(scope="session")
def tiny_rm(tiny_rm_dir: Path):  # type: ignore[no-untyped-def]
    from tether.reward.scoring import load_reward_model

    return load_reward_model(tiny_rm_dir, device="cpu")


def preference_row(prompt: SandboxPrompt, a: str, b: str, *, task_id: int) -> PreferenceRow | None:
    """A row with gold's preferred response as chosen; None when gold sees no difference."""
    side = gold_side(prompt, a, b)
    if side is None:
        return None
    chosen, rejected = (a, b) if side == "chosen" else (b, a)
    return PreferenceRow(
        prompt=prompt.text,
        chosen=chosen,
        rejected=rejected,
        dimension=prompt.dimension,
        stratum=prompt.stratum,
        origin="plan",
        margin=2 / 3,
        agreement=1.0,
        n_votes=1,
        rater_ids=(1,),
        rater_names=("gold",),
        task_id=task_id,
    )


def sandbox_rows(n: int, *, seed: int = 0) -> list[PreferenceRow]:
    """Up to n preference rows over sandbox prompts, two SFT-style responses each, ordered by gold."""
    rng = random.Random(seed)
    rows = []
    for i, prompt in enumerate(generate_prompts(seed=seed, n=n)):
        row = preference_row(
            prompt, g.render_sft_example(prompt, rng), g.render_sft_example(prompt, rng), task_id=i
        )
        if row is not None:
            rows.append(row)
    return rows


@pytest.fixture(scope="session")
def make_sandbox_rows():  # type: ignore[no-untyped-def]
    """`sandbox_rows` for test modules (tests/reward is not a package, so they cannot import it)."""
    return sandbox_rows
