"""Building a run's models and optimizer, the SFT baseline, and the loop state that a checkpoint holds.

`LoopState` is everything besides the weights that must be restored for a resumed run to end
exactly as an uninterrupted one: optimizer and scheduler, KL controller, spike detector, monitor
suite, data position, the running-KL history, score normalization and every RNG (every rank's, in a
data-parallel run; the rest is the same on every rank).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator

from tether.monitors import MonitorSuite
from tether.monitors.features import DEFAULT_FEATURES, TextFeatures
from tether.reward.scoring import Scorer
from tether.rl.checkpoint import (
    RngState,
    TrainerState,
    flatten_optimizer,
    rank_rng_entries,
    rank_rng_state,
    rng_state,
    set_rng_state,
    unflatten_optimizer,
)
from tether.rl.config import RLConfig
from tether.rl.experience import ScoreProcessing, chunked
from tether.rl.kl_control import AdaptiveKLController, FixedKLController, KLController, KLSpikeDetector
from tether.rl.masked import masked_mean
from tether.rl.metrics import gold_grades, gold_metrics
from tether.rl.models import RLModels, logprobs_and_entropy
from tether.rl.prompts import PromptItem, PromptSampler
from tether.rl.rollout import Rollout
from tether.spec.model import RLPolicy


def make_controller(cfg: RLConfig, policy: RLPolicy) -> KLController:
    if cfg.kl == "fixed":
        return FixedKLController(cfg.init_kl_coef)
    return AdaptiveKLController.from_spec(policy, init_beta=cfg.init_kl_coef, horizon=cfg.kl_horizon)


def make_optimizer(
    model: torch.nn.Module, cfg: RLConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the policy and critic, and a per-RL-step schedule (constant or linear to zero)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.total_steps

    def factor(step: int) -> float:
        return 1.0 if cfg.lr_schedule == "constant" else max(0.0, 1.0 - step / total)

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def prepare(models: RLModels, cfg: RLConfig, accelerator: Accelerator) -> tuple[Any, Any, Any]:
    """(prepared model, prepared optimizer, scheduler); the reference moves to the device, frozen."""
    optimizer, scheduler = make_optimizer(models.trainable, cfg)
    model, optimizer = accelerator.prepare(models.trainable, optimizer)
    models.reference.to(accelerator.device)
    models.reference.eval()
    model.eval()
    return model, optimizer, scheduler


@torch.no_grad()
def sft_baseline(
    policy: torch.nn.Module,
    rollout: Rollout,
    scorer: Scorer,
    prompts: Sequence[PromptItem],
    *,
    temperature: float,
    gold: bool,
    features: TextFeatures = DEFAULT_FEATURES,
) -> tuple[dict[str, float], np.ndarray]:
    """The SFT policy's step-0 metrics (the monitors' reference) and its raw RM scores.

    Measured before any update, on prompts drawn apart from the training order."""
    batch = rollout.generate([p.prompt for p in prompts])
    raw = np.asarray(scorer.score([p.prompt for p in prompts], batch.responses), dtype=np.float64)
    entropy = chunked(
        lambda b: logprobs_and_entropy(policy, b, temperature, entropy=True)[1],  # type: ignore[return-value,arg-type]
        batch,
        32,
    )  # (B, R)
    metrics = {
        "objective/kl": 0.0,
        "objective/kl_k3": 0.0,
        "objective/rm_score": float(raw.mean()),
        "policy/entropy": masked_mean(entropy, batch.response_mask).item(),
        **features.step_metrics(batch.responses),
    }
    if gold:
        metrics |= gold_metrics(gold_grades(prompts, batch.responses))
    return metrics, raw


def score_processing(cfg: RLConfig, raw: np.ndarray | None) -> ScoreProcessing:
    options: dict[str, Any] = {
        "normalize": cfg.normalize_scores,
        "clip": cfg.score_clip,
        "missing_eos_penalty": cfg.missing_eos_penalty,
    }
    if cfg.normalize_scores and raw is not None:
        return ScoreProcessing.measured(raw, **options)
    return ScoreProcessing(**options)


@dataclass
class LoopState:
    """The resumable state of the loop besides the weights."""

    step: int
    """Steps completed; the next step's index."""
    controller: KLController
    spike: KLSpikeDetector
    suite: MonitorSuite
    sampler: PromptSampler
    scheduler: torch.optim.lr_scheduler.LambdaLR
    processing: ScoreProcessing
    kl_history: list[float] = field(default_factory=list)

    def snapshot(self, optimizer: torch.optim.Optimizer, rank_rngs: Sequence[RngState] = ()) -> TrainerState:
        """Everything but the weights; `rank_rngs`: the RNG states of ranks 1, 2… of a data-parallel
        run (each samples its own stream), saved beside this process's."""
        opt_tensors, opt_skeleton = flatten_optimizer(optimizer.state_dict())
        rng_tensors, rng_json = rng_state()
        scheduler = {k: v for k, v in self.scheduler.state_dict().items() if k != "lr_lambdas"}
        state = {
            "step": self.step,
            "optimizer": opt_skeleton,
            "scheduler": scheduler,
            "kl_controller": self.controller.state_dict(),
            "spike_detector": self.spike.state_dict(),
            "monitors": self.suite.state_dict(),
            "sampler": self.sampler.state_dict(),
            "score_processing": self.processing.state_dict(),
            "kl_history": list(self.kl_history),
            "rng": rng_json,
        }
        if rank_rngs:
            rank_tensors, state["rng_ranks"] = rank_rng_entries(rank_rngs)
            rng_tensors |= rank_tensors
        return TrainerState({**opt_tensors, **rng_tensors}, state)

    def restore(self, trainer: TrainerState, optimizer: torch.optim.Optimizer, rank: int = 0) -> bool:
        """Load everything `snapshot` saved; the RNGs (this rank's) last, right before the loop
        continues. False when the checkpoint holds no RNG state for `rank` (it was written by fewer
        processes): the caller seeds that rank's stream."""
        state = trainer.state
        optimizer.load_state_dict(unflatten_optimizer(trainer.tensors, state["optimizer"]))
        self.scheduler.load_state_dict({**state["scheduler"], "lr_lambdas": [None]})
        self.controller.load_state_dict(state["kl_controller"])
        self.spike.load_state_dict(state["spike_detector"])
        self.suite.load_state_dict(state["monitors"])
        self.sampler.load_state_dict(state["sampler"])
        self.processing = ScoreProcessing(**state["score_processing"])
        self.kl_history = [float(x) for x in state["kl_history"]]
        self.step = int(state["step"])
        saved = rank_rng_state(trainer, rank)
        if saved is not None:
            set_rng_state(*saved)
        return saved is not None


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / f"step-{step:06d}"
