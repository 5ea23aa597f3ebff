"""A synthetic export a reward model can learn in a few steps: chosen holds "good", rejected never does."""

from __future__ import annotations

import random
from pathlib import Path

from tether.labeling.export import PreferenceRow
from tether.labeling.export_files import ExportFormat, write_export
from tether.sandbox.config import TinyPolicyConfig
from tether.sandbox.policy import build_model, save_policy, train_tokenizer

WORDS = [f"w{i}" for i in range(40)]
TINY = TinyPolicyConfig(n_layer=1, n_embd=32, n_head=2, n_positions=64)
"""A one-layer GPT-2 policy: the base the reward tests train from."""


def synthetic_rows(
    n: int, *, seed: int = 0, dimensions: tuple[str, ...] = ("accuracy",)
) -> list[PreferenceRow]:
    """Chosen holds "good" somewhere; rejected is random words. Lengths vary from 3 to 21 words."""
    rng = random.Random(seed)

    def words() -> list[str]:
        return [rng.choice(WORDS) for _ in range(rng.randint(3, 20))]

    rows = []
    for i in range(n):
        chosen = words()
        chosen.insert(rng.randint(0, len(chosen)), "good")
        rows.append(
            PreferenceRow(
                prompt=f"say {rng.choice(WORDS)} now",
                chosen=" ".join(chosen),
                rejected=" ".join(words()),
                dimension=dimensions[i % len(dimensions)],
                stratum="routine",
                origin="plan",
                margin=rng.choice([1 / 3, 2 / 3, 1.0]),
                agreement=1.0,
                n_votes=1,
                rater_ids=(1,),
                rater_names=("r",),
                task_id=i,
            )
        )
    return rows


def save_tiny_policy(path: Path) -> Path:
    tokenizer = train_tokenizer([*WORDS, "say now good"])
    save_policy(build_model(tokenizer, TINY), tokenizer, TINY, path)
    return path


def write_synthetic_export(path: Path, *, spec_hash: str, n: int = 240, fmt: ExportFormat = "jsonl") -> Path:
    rows = synthetic_rows(n)
    cut = n * 5 // 6
    write_export(path, rows[:cut], rows[cut:], fmt=fmt, manifest={"spec_hash": spec_hash})
    return path
