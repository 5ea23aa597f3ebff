"""The `RLAlgorithm` interface that PPO and RLOO implement, and what one step works with.

An algorithm's `step` runs the numbered steps (1)-(8) for one batch of prompts and returns its
metrics; the loop (`tether.rl.run`) owns everything around it: β, the budget, monitors, checkpoints.
With N data-parallel ranks a step works on this rank's shard of the global batch and its metrics and
episodes are the global batch's (`tether.rl.global_batch`, `tether.rl.episodes`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from accelerate import Accelerator

from tether.monitors.features import DEFAULT_FEATURES, TextFeatures
from tether.reward.scoring import Scorer
from tether.rl.config import RLConfig
from tether.rl.episodes import Episode, step_episodes, text_metrics
from tether.rl.experience import (
    Experience,
    ScoreProcessing,
    collect_experience,
    collect_experience_with_graph,
)
from tether.rl.global_batch import Ranks, global_token_mean, group_seed, shard_indices
from tether.rl.metrics import rollout_metrics
from tether.rl.prompts import PromptItem, PromptSampler, repeat_each
from tether.rl.rollout import Rollout


@dataclass
class StepContext:
    """The models, optimizer and services a step uses; built once per run."""

    cfg: RLConfig
    model: torch.nn.Module
    """`PolicyAndValue`, as `accelerator.prepare` returned it."""
    optimizer: torch.optim.Optimizer
    accelerator: Accelerator
    reference: torch.nn.Module
    rollout: Rollout
    scorer: Scorer
    processing: ScoreProcessing
    gold: bool
    """Log gold/* metrics (a sandbox project)."""
    reference_off: Callable[[], AbstractContextManager[Any]] = nullcontext
    """Entered around the reference's forward: with LoRA it switches the policy's adapter off."""
    features: TextFeatures = DEFAULT_FEATURES
    """The project's style features, for the ``gen/*`` metrics (`tether.monitors.features.features_for`)."""

    @property
    def ranks(self) -> Ranks:
        """The data-parallel ranks the step's global batch spreads over (one process by default)."""
        return Ranks.of(self.accelerator)


@dataclass(frozen=True)
class StepOutput:
    metrics: dict[str, float]
    """The step's metrics over the global batch (the same on every rank)."""
    experience: Experience
    """This rank's rollouts and what was measured on them."""
    episodes: list[Episode] = field(default_factory=list)
    """Every rank's episodes in the global draw order, for the logs and the monitors."""


class RLAlgorithm(Protocol):
    name: str

    def step(self, ctx: StepContext, step: int, sampler: PromptSampler, beta: float) -> StepOutput:
        """One RL step at KL coefficient `beta`; draws its prompts from `sampler`."""
        ...


@dataclass(frozen=True)
class StepDraw:
    """Step (1) on this rank: its share of the step's prompts and, seeded per prompt, their seeds."""

    prompts: list[PromptItem]
    """Each prompt of the share repeated k times, samples adjacent."""
    seeds: list[int] | None
    """One per prompt (`RLConfig.seed_per_prompt`), else None: the global generator draws."""


def step_prompts(ctx: StepContext, sampler: PromptSampler, step: int) -> StepDraw:
    """Step (1): the same global draw on every process, each keeps its shard, repeated k times."""
    cfg = ctx.cfg
    drawn = sampler.draw(cfg.batch_size)
    places = shard_indices(len(drawn), ctx.ranks)
    seeds = [group_seed(cfg.seed, step, i, drawn[i].key) for i in places] if cfg.seed_per_prompt else None
    return StepDraw(repeat_each([drawn[i] for i in places], cfg.samples_per_prompt), seeds)


def sample_and_collect(ctx: StepContext, sampler: PromptSampler, step: int) -> Experience:
    """Steps (1)-(5): this process's share of the step's prompts, repeated k times, then rolled out."""
    draw = step_prompts(ctx, sampler, step)
    return collect_experience(
        _unwrapped(ctx),
        ctx.reference,
        ctx.rollout,
        ctx.scorer,
        draw.prompts,
        temperature=ctx.cfg.temperature,
        processing=ctx.processing,
        kl_estimator=ctx.cfg.kl_estimator,
        chunk=ctx.cfg.minibatch_size,
        reference_off=ctx.reference_off,
        seeds=draw.seeds,
    )


def sample_and_collect_with_graph(
    ctx: StepContext, sampler: PromptSampler, step: int
) -> tuple[Experience, torch.Tensor]:
    """Steps (1)-(5) for a single-pass update: also the policy's (B, R) log-probabilities with their graph."""
    draw = step_prompts(ctx, sampler, step)
    return collect_experience_with_graph(
        ctx.model,
        ctx.reference,
        ctx.rollout,
        ctx.scorer,
        draw.prompts,
        temperature=ctx.cfg.temperature,
        processing=ctx.processing,
        kl_estimator=ctx.cfg.kl_estimator,
        chunk=ctx.cfg.minibatch_size,
        autocast=ctx.accelerator.autocast,
        reference_off=ctx.reference_off,
        seeds=draw.seeds,
    )


def _unwrapped(ctx: StepContext):  # type: ignore[no-untyped-def]
    from tether.rl.update import unwrap

    return unwrap(ctx.model, ctx.accelerator)


def finish_step(
    ctx: StepContext,
    exp: Experience,
    beta: float,
    updates: Mapping[str, float],
    exact: Mapping[str, float] | None = None,
) -> StepOutput:
    """Step (8) over the global batch: the rollout and update metrics of this rank averaged over the
    ranks (per-episode means over equal shards, or token-mean shares: see `tether.rl.global_batch`),
    the text and gold metrics of the gathered episodes, then `exact`, metrics already computed over
    the global batch. On one process, the metrics as they are."""
    ranks = ctx.ranks
    episodes = step_episodes(exp, ranks, ctx.cfg.samples_per_prompt)
    rollout = rollout_metrics(exp, beta, token_mean=global_token_mean(exp.mask, ranks))
    text = text_metrics(episodes, gold=ctx.gold, features=ctx.features)
    reduced = reduce_metrics({**rollout, **updates}, ctx.accelerator)
    metrics = {**{k: reduced[k] for k in rollout}, **text, **{k: reduced[k] for k in updates}}
    return StepOutput({**metrics, **(exact or {})}, exp, episodes)


def reduce_metrics(metrics: Mapping[str, float], accelerator: Accelerator) -> dict[str, float]:
    """Metrics averaged over processes (every process logs the same keys); unchanged on one process."""
    if accelerator.num_processes == 1:
        return dict(metrics)
    keys = sorted(metrics)
    values = torch.tensor([metrics[k] for k in keys], dtype=torch.float64, device=accelerator.device)
    reduced = dict(zip(keys, accelerator.reduce(values, reduction="mean").tolist(), strict=True))
    return {k: reduced[k] for k in metrics}  # in the order they were given


def make_algorithm(name: str) -> RLAlgorithm:
    from tether.rl.ppo import PPO
    from tether.rl.rloo import RLOO

    algorithms: dict[str, RLAlgorithm] = {"ppo": PPO(), "rloo": RLOO()}
    if name not in algorithms:
        raise ValueError(f"unknown algorithm {name!r}; choose ppo or rloo")
    return algorithms[name]
