"""Typed configuration of reward-model training (`tether rm train`).

Kept free of heavy imports so that the CLI can show defaults without loading torch. The
checkpoint stores `asdict(config)` in tether_reward.json; `from_dict` reads it back, filling keys
that older checkpoints lack with today's defaults and ignoring keys it no longer knows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from tether.distributed import BatchSplit, split_batch


@dataclass(frozen=True)
class RewardTrainConfig:
    """How a Bradley–Terry reward model is trained on a preference export."""

    epochs: int = 1
    """Passes over the training pairs (InstructGPT: one; more overfits quickly)."""
    batch_size: int = 32
    """Preference pairs per optimizer step over all processes (the global batch); each device packs its
    share, batch_size / (processes x gradient_accumulation_steps) pairs, into one forward pass."""
    gradient_accumulation_steps: int = 1
    """Forward/backward passes whose gradients add up to one optimizer step; the learning-rate schedule
    counts optimizer steps. Raising it shrinks the per-device batch, not the global one."""
    lr: float = 1e-4
    """Peak learning rate of AdamW (linear warmup, then linear decay to zero; TRL's default)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_ratio: float = 0.03
    """Share of the optimizer steps spent warming the learning rate up from zero."""
    max_length: int = 512
    """Longest (prompt, response) sequence in tokens; longer pairs are left out (as TRL does), never cut."""
    margin: bool = True
    """Use the export's per-pair margin: loss −log σ(r_c − r_r − m) (Llama 2's "small" margin scale)."""
    center_coef: float = 0.01
    """Weight λ of the centering term λ·mean((r_c + r_r)²) that keeps rewards near zero (0 turns it off)."""
    lora: bool = False
    """Train LoRA adapters and the score head instead of every weight; merged into the weights on save."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA branch."""
    seed: int = 0
    """Seed of the score head's initialization, the batch order and dropout."""
    log_every: int = 10
    """Read the metrics back from the device every this many steps (one transfer, no stall per step);
    metrics.jsonl still gets a row for every step."""
    bucket_size: int = 20
    """Length bucketing: pairs are sorted by length within chunks of bucket_size x batch_size, then the
    batches are shuffled, so a batch holds pairs of similar length and padding stays small (1 disables it)."""
    grad_clip: float = 1.0
    """Clip the gradient's global norm to this value (0 turns clipping off)."""
    shared_prefix: bool = True
    """Read a pair's common prefix (its prompt) once, in one row with both replies
    (`tether.reward.shared_prefix`), where a check on the first pairs shows that the model reads it
    exactly; off, or where the check fails, both full sequences are read, as TRL does."""

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be at least 1, got {getattr(self, name)}"
            for name in (
                "epochs",
                "batch_size",
                "gradient_accumulation_steps",
                "max_length",
                "log_every",
                "bucket_size",
                "lora_r",
            )
            if getattr(self, name) < 1
        ]
        if not self.lr > 0:
            problems.append(f"lr must be positive, got {self.lr}")
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        problems += [
            f"{name} must be non-negative, got {getattr(self, name)}"
            for name in ("weight_decay", "center_coef", "grad_clip", "lora_dropout")
            if getattr(self, name) < 0
        ]
        if problems:
            # A plain ValueError: the CLI turns it into a TetherInputError naming the option.
            raise ValueError("; ".join(problems))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RewardTrainConfig:
        """The config stored in a checkpoint; missing keys take today's defaults, unknown keys are dropped."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def batch_split(cfg: RewardTrainConfig, *, world_size: int, what: str = "batch_size") -> BatchSplit:
    """The per-device share of the global batch on `world_size` processes; an input error naming both
    numbers when they do not divide (`what` names the setting in that message)."""
    return split_batch(
        cfg.batch_size, world_size=world_size, accumulation=cfg.gradient_accumulation_steps, what=what
    )


@dataclass(frozen=True)
class Schedule:
    """Step counts derived from the config and the data, computed in one place (`schedule`)."""

    steps_per_epoch: int
    total_steps: int
    warmup_steps: int


def schedule(cfg: RewardTrainConfig, steps_per_epoch: int) -> Schedule:
    """Total and warmup steps for `steps_per_epoch` optimizer steps per pass (global batches, so the same
    on any number of processes).

    Warmup rounds up, as Hugging Face's `TrainingArguments.get_warmup_steps` does for a ratio."""
    total = steps_per_epoch * cfg.epochs
    return Schedule(steps_per_epoch, total, math.ceil(cfg.warmup_ratio * total))


def lr_factor(step: int, plan: Schedule) -> float:
    """Multiplier of the peak learning rate at `step` (0-based): linear warmup, then linear decay to zero."""
    if step < plan.warmup_steps:
        return (step + 1) / (plan.warmup_steps + 1)
    return max(0.0, (plan.total_steps - step) / max(1, plan.total_steps - plan.warmup_steps))
