"""Steps (2)-(5) of every RL step, shared by PPO and RLOO: generate, score, log-probabilities, KL.

The result, `Experience`, is everything the update needs and nothing it recomputes: the rollout,
the old policy's and the reference's per-token log-probabilities, the critic's values (PPO), the
RM scores (raw and as used in the reward) and the per-token KL. All of it is computed without
gradients, in chunks of `chunk` rows so a large batch never holds all its logits at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tether.reward.scoring import Scorer
from tether.rl.kl import kl_per_token
from tether.rl.logprobs import entropy_from_logits, token_logprobs
from tether.rl.models import PolicyAndValue, logprobs_and_entropy, response_values
from tether.rl.prompts import PromptItem
from tether.rl.rewards import clip_scores, normalize_scores
from tether.rl.rollout import GroupSeededRollout, Rollout, RolloutBatch

if TYPE_CHECKING:
    from tether.world import GoldGrade


@dataclass(frozen=True)
class ScoreProcessing:
    """How raw RM scores become the scores in the reward: EOS penalty, normalization, clipping."""

    mean: float = 0.0
    std: float = 1.0
    normalize: bool = False
    clip: float = 0.0
    missing_eos_penalty: float = 0.0

    def apply(self, raw: torch.Tensor, has_eos: torch.Tensor) -> torch.Tensor:
        """(B,) raw scores, (B,) has-EOS -> (B,) scores used in the reward."""
        scores = raw.float()
        if self.normalize:
            scores = normalize_scores(scores, self.mean, self.std)
        if self.clip > 0:
            scores = clip_scores(scores, self.clip)
        if self.missing_eos_penalty > 0:
            scores = scores - self.missing_eos_penalty * (~has_eos).float()
        return scores

    def state_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "std": self.std,
            "normalize": self.normalize,
            "clip": self.clip,
            "missing_eos_penalty": self.missing_eos_penalty,
        }

    @classmethod
    def measured(cls, raw: np.ndarray, **kwargs: Any) -> ScoreProcessing:
        """Mean and std measured on SFT samples (std floored so a constant RM cannot divide by 0)."""
        std = float(np.std(raw)) if raw.size > 1 else 1.0
        return cls(mean=float(np.mean(raw)), std=max(std, 1e-6) if math.isfinite(std) else 1.0, **kwargs)


@dataclass
class Experience:
    """One step's rollouts and everything measured on them (B episodes, R response tokens)."""

    batch: RolloutBatch
    prompts: list[PromptItem]
    logprobs: torch.Tensor
    """(B, R) old policy log-probabilities, temperature-scaled."""
    ref_logprobs: torch.Tensor
    """(B, R) reference (SFT) log-probabilities, temperature-scaled."""
    entropy: torch.Tensor
    """(B, R) policy token entropies (nats)."""
    values: torch.Tensor | None
    """(B, R) critic values at rollout time (PPO), else None."""
    raw_scores: torch.Tensor
    """(B,) reward-model scores as the RM gave them."""
    scores: torch.Tensor
    """(B,) scores as used in the reward (see `ScoreProcessing`)."""
    kl: torch.Tensor
    """(B, R) per-token KL estimate used in the reward (cfg.kl_estimator)."""
    gold: list[GoldGrade | None] | None = None
    """Sandbox gold grade of each response (None without ground truth); filled on first use by
    `tether.rl.metrics.experience_gold`, so the step's metrics and monitors grade once."""

    @property
    def mask(self) -> torch.Tensor:
        return self.batch.response_mask  # (B, R)


def chunked(fn: Callable[[RolloutBatch], torch.Tensor], batch: RolloutBatch, chunk: int) -> torch.Tensor:
    """`fn` over row chunks of `batch`, concatenated along rows."""
    rows = torch.arange(batch.sequences.shape[0], device=batch.sequences.device)
    return torch.cat([fn(batch.select(part)) for part in rows.split(chunk)], dim=0)


@dataclass(frozen=True)
class Scored:
    """Steps (2)-(3): the rollout and its RM scores."""

    batch: RolloutBatch
    raw: torch.Tensor
    """(B,) as the RM gave them."""
    scores: torch.Tensor
    """(B,) as used in the reward."""


@torch.no_grad()
def generate_and_score(
    rollout: Rollout,
    scorer: Scorer,
    prompts: Sequence[PromptItem],
    processing: ScoreProcessing,
    seeds: Sequence[int] | None = None,
) -> Scored:
    """(2) generate and (3) score with the reward model, through tether.hf.scored_text. With `seeds`
    (one per prompt group, `RLConfig.seed_per_prompt`) each group is sampled alone from its seed."""
    texts = [p.prompt for p in prompts]
    if seeds is None:
        batch = rollout.generate(texts)  # (B, P + R)
    elif isinstance(rollout, GroupSeededRollout):
        batch = rollout.generate_groups(texts, seeds)  # (B, P + R)
    else:
        name = type(rollout).__name__
        raise TypeError(f"seed_per_prompt needs a rollout with generate_groups; {name} has none")
    raw = torch.as_tensor(scorer.score(texts, batch.responses), dtype=torch.float32)
    raw = raw.to(batch.sequences.device)  # (B,)
    return Scored(batch, raw, processing.apply(raw, batch.has_eos))


@torch.no_grad()
def collect_experience(
    trainable: PolicyAndValue,
    reference: torch.nn.Module,
    rollout: Rollout,
    scorer: Scorer,
    prompts: Sequence[PromptItem],
    *,
    temperature: float,
    processing: ScoreProcessing,
    kl_estimator: str,
    chunk: int,
    reference_off: Callable[[], AbstractContextManager[Any]] = nullcontext,
    seeds: Sequence[int] | None = None,
) -> Experience:
    """Steps (2)-(5) for `prompts` (already repeated k times, samples adjacent). `reference_off` is
    entered around the reference's pass (with LoRA the reference is the policy, adapter off); `seeds`,
    one per prompt group, sample each group alone (`generate_and_score`)."""
    # (2)-(3) generate, score
    scored = generate_and_score(rollout, scorer, prompts, processing, seeds)
    batch = scored.batch
    # (4) log-probabilities of the policy (with entropy) and the reference; values
    logp_ent = [
        logprobs_and_entropy(trainable.policy, part, temperature, entropy=True)
        for part in _parts(batch, chunk)
    ]
    logprobs = torch.cat([lp for lp, _ in logp_ent])  # (B, R)
    entropy = torch.cat([ent for _, ent in logp_ent if ent is not None])  # (B, R)
    with reference_off():
        ref_logprobs = reference_logprobs(reference, batch, temperature, chunk)  # (B, R)
    critic = trainable.critic
    values = chunked(lambda b: response_values(critic, b), batch, chunk) if critic is not None else None
    # (5) per-token KL against the reference
    kl = kl_per_token(logprobs, ref_logprobs, kl_estimator)  # type: ignore[arg-type]  # (B, R)
    return Experience(
        batch, list(prompts), logprobs, ref_logprobs, entropy, values, scored.raw, scored.scores, kl
    )


def collect_experience_with_graph(
    model: torch.nn.Module,
    reference: torch.nn.Module,
    rollout: Rollout,
    scorer: Scorer,
    prompts: Sequence[PromptItem],
    *,
    temperature: float,
    processing: ScoreProcessing,
    kl_estimator: str,
    chunk: int,
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
    reference_off: Callable[[], AbstractContextManager[Any]] = nullcontext,
    seeds: Sequence[int] | None = None,
) -> tuple[Experience, torch.Tensor]:
    """Steps (2)-(5) for an update that takes one gradient step on the whole batch (one epoch, one
    minibatch): the policy's forward pass keeps its graph and serves twice, as the rollout's "old"
    log-probabilities (detached, in the Experience) and as the update's (returned, (B, R)).

    Before any step the policy has not moved, so old and new log-probabilities are the same numbers
    and a separate no-grad forward (what `collect_experience` and TRL's RLOOTrainer run) would only
    recompute them: this saves one policy forward per step. `model` is the prepared
    `PolicyAndValue`, so data-parallel gradient hooks see the forward; it must have no critic.
    `autocast` (the accelerator's) wraps the reference's forward too: the prepared policy runs
    under it, and KL between a bf16 policy and an fp32 reference would measure the precision gap.
    `reference_off` is entered around the reference's pass and `seeds` sample each prompt group
    alone, as in `collect_experience`."""
    scored = generate_and_score(rollout, scorer, prompts, processing, seeds)
    batch = scored.batch
    with torch.no_grad(), autocast(), reference_off():
        ref_logprobs = reference_logprobs(reference, batch, temperature, chunk)  # (B, R)
    model.train()
    logits, values = model(batch)  # (B, R, V) with its graph
    if values is not None:
        raise RuntimeError("collect_experience_with_graph: a critic's values need their own old pass")
    logits = logits / temperature
    logprobs = token_logprobs(logits, batch.response_ids)  # (B, R), differentiable
    with torch.no_grad():
        entropy = entropy_from_logits(logits.detach())  # (B, R)
        old = logprobs.detach()  # (B, R)
        kl = kl_per_token(old, ref_logprobs, kl_estimator)  # type: ignore[arg-type]  # (B, R)
    exp = Experience(batch, list(prompts), old, ref_logprobs, entropy, None, scored.raw, scored.scores, kl)
    return exp, logprobs


def reference_logprobs(
    reference: torch.nn.Module, batch: RolloutBatch, temperature: float, chunk: int
) -> torch.Tensor:
    """(B, R) the frozen reference's temperature-scaled log-probabilities, `chunk` rows at a time."""
    return chunked(lambda b: logprobs_and_entropy(reference, b, temperature)[0], batch, chunk)


def _parts(batch: RolloutBatch, chunk: int) -> list[RolloutBatch]:
    rows = torch.arange(batch.sequences.shape[0], device=batch.sequences.device)
    return [batch.select(part) for part in rows.split(chunk)]
