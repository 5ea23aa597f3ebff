"""The `RLAlgorithm` interface that PPO and RLOO implement, and what one step works with.

An algorithm's `step` runs the numbered steps (1)-(8) for one batch of prompts and returns its
metrics; the loop (`tether.rl.run`) owns everything around it: β, the budget, monitors, checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from accelerate import Accelerator

from tether.monitors.features import DEFAULT_FEATURES, TextFeatures
from tether.reward.scoring import Scorer
from tether.rl.config import RLConfig
from tether.rl.experience import (
    Experience,
    ScoreProcessing,
    collect_experience,
    collect_experience_with_graph,
)
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


@dataclass(frozen=True)
class StepOutput:
    metrics: dict[str, float]
    experience: Experience


class RLAlgorithm(Protocol):
    name: str

    def step(self, ctx: StepContext, step: int, sampler: PromptSampler, beta: float) -> StepOutput:
        """One RL step at KL coefficient `beta`; draws its prompts from `sampler`."""
        ...


def step_prompts(ctx: StepContext, sampler: PromptSampler) -> list[PromptItem]:
    """Step (1): the same global draw on every process, each keeps its slice, repeated k times."""
    drawn = sampler.draw(ctx.cfg.batch_size)
    acc = ctx.accelerator
    mine = drawn[acc.process_index :: acc.num_processes]
    return repeat_each(mine, ctx.cfg.samples_per_prompt)


def sample_and_collect(ctx: StepContext, sampler: PromptSampler, beta: float) -> Experience:
    """Steps (1)-(5): this process's share of the step's prompts, repeated k times, then rolled out."""
    del beta  # β enters at the reward, step (5b), inside each algorithm
    return collect_experience(
        _unwrapped(ctx),
        ctx.reference,
        ctx.rollout,
        ctx.scorer,
        step_prompts(ctx, sampler),
        temperature=ctx.cfg.temperature,
        processing=ctx.processing,
        kl_estimator=ctx.cfg.kl_estimator,
        chunk=ctx.cfg.minibatch_size,
        reference_off=ctx.reference_off,
    )


def sample_and_collect_with_graph(
    ctx: StepContext, sampler: PromptSampler
) -> tuple[Experience, torch.Tensor]:
    """Steps (1)-(5) for a single-pass update: also the policy's (B, R) log-probabilities with their graph."""
    return collect_experience_with_graph(
        ctx.model,
        ctx.reference,
        ctx.rollout,
        ctx.scorer,
        step_prompts(ctx, sampler),
        temperature=ctx.cfg.temperature,
        processing=ctx.processing,
        kl_estimator=ctx.cfg.kl_estimator,
        chunk=ctx.cfg.minibatch_size,
        autocast=ctx.accelerator.autocast,
        reference_off=ctx.reference_off,
    )


def _unwrapped(ctx: StepContext):  # type: ignore[no-untyped-def]
    from tether.rl.update import unwrap

    return unwrap(ctx.model, ctx.accelerator)


def reduce_metrics(metrics: Mapping[str, float], accelerator: Accelerator) -> dict[str, float]:
    """Metrics averaged over processes (every process logs the same keys); unchanged on one process."""
    if accelerator.num_processes == 1:
        return dict(metrics)
    keys = sorted(metrics)
    values = torch.tensor([metrics[k] for k in keys], dtype=torch.float64, device=accelerator.device)
    reduced = accelerator.reduce(values, reduction="mean")
    return dict(zip(keys, reduced.tolist(), strict=True))


def make_algorithm(name: str) -> RLAlgorithm:
    from tether.rl.ppo import PPO
    from tether.rl.rloo import RLOO

    algorithms: dict[str, RLAlgorithm] = {"ppo": PPO(), "rloo": RLOO()}
    if name not in algorithms:
        raise ValueError(f"unknown algorithm {name!r}; choose ppo or rloo")
    return algorithms[name]
