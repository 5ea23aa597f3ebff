"""Typed configuration of reward-model training (`tether rm train`).

Kept free of heavy imports so that the CLI can show defaults without loading torch. The
checkpoint stores `asdict(config)` in tether_reward.json; `from_dict` reads it back, filling keys
that older checkpoints lack with today's defaults and ignoring keys it no longer knows.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, fields
from typing import Annotated, Any

from pydantic import Field

from tether.config_model import config
from tether.distributed import BatchSplit, split_batch

log = logging.getLogger(__name__)

AtLeast1 = Annotated[int, Field(ge=1)]
NonNegative = Annotated[float, Field(ge=0)]


@config
class RewardTrainConfig:
    """How a Bradley–Terry reward model is trained on a preference export."""

    epochs: AtLeast1 = 1
    """Passes over the training pairs (InstructGPT: one; more overfits quickly)."""
    batch_size: AtLeast1 = 32
    """Preference pairs per optimizer step over all processes (the global batch); each device packs its
    share, batch_size / (processes x gradient_accumulation_steps) pairs, into one forward pass."""
    gradient_accumulation_steps: AtLeast1 = 1
    """Forward/backward passes whose gradients add up to one optimizer step; the learning-rate schedule
    counts optimizer steps. Raising it shrinks the per-device batch, not the global one."""
    lr: Annotated[float, Field(gt=0)] = 1e-4
    """Peak learning rate of AdamW (linear warmup, then linear decay to zero; TRL's default)."""
    weight_decay: NonNegative = 0.0
    """AdamW weight decay."""
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.03
    """Share of the optimizer steps spent warming the learning rate up from zero."""
    max_length: AtLeast1 = 512
    """Longest (prompt, response) sequence in tokens; longer pairs are left out (as TRL does), never cut."""
    margin: bool = True
    """Use the export's per-pair margin: loss −log σ(r_c − r_r − m) (Llama 2's "small" margin scale)."""
    center_coef: NonNegative = 0.01
    """Weight λ of the centering term λ·mean((r_c + r_r)²) that keeps rewards near zero (0 turns it off)."""
    lora: bool = False
    """Train LoRA adapters and the score head instead of every weight; merged into the weights on save."""
    lora_r: AtLeast1 = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    lora_dropout: NonNegative = 0.05
    """Dropout on the LoRA branch."""
    seed: int = 0
    """Seed of the score head's initialization, the batch order and dropout."""
    log_every: AtLeast1 = 10
    """Read the metrics back from the device every this many steps (one transfer, no stall per step);
    metrics.jsonl still gets a row for every step."""
    bucket_size: AtLeast1 = 20
    """Length bucketing: pairs are sorted by length within chunks of bucket_size x batch_size, then the
    batches are shuffled, so a batch holds pairs of similar length and padding stays small (1 disables it)."""
    grad_clip: NonNegative = 1.0
    """Clip the gradient's global norm to this value (0 turns clipping off)."""
    shared_prefix: bool = True
    """Read a pair's common prefix (its prompt) once, in one row with both replies
    (`tether.reward.shared_prefix`), where a check on the first pairs shows that the model reads it
    exactly; off, or where the check fails, both full sequences are read, as TRL does."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RewardTrainConfig:
        """The config stored in a checkpoint; missing keys take today's defaults, unknown keys are dropped
        with a warning (a checkpoint from a version that had them)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            log.warning(
                "stored reward-model config: ignoring settings this version lacks: %s", ", ".join(unknown)
            )
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
