"""Steps (3)-(5) of a run: build the models and the loop state (fresh or restored), run the loop, save.

Separate from `tether.rl.run`, which resolves inputs and keeps the store up to date, so this module
is only about tensors, state and files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from accelerate.utils import set_seed

from tether.distributed import make_accelerator
from tether.errors import TetherInputError
from tether.generation import fitted_prompts
from tether.hf import context_length
from tether.monitors.features import TextFeatures, features_for
from tether.reward.scoring import Scorer, load_reward_model
from tether.rl.algorithm import StepContext, make_algorithm
from tether.rl.checkpoint import rng_state, save_checkpoint
from tether.rl.experience import ScoreProcessing
from tether.rl.global_batch import rank_seed, rl_batch_split
from tether.rl.kl_control import KLSpikeDetector
from tether.rl.loop import EvalFn, LoopIO, LoopOutcome, run_loop
from tether.rl.models import RLModels, build_models
from tether.rl.prompts import PromptItem, PromptSampler, baseline_prompts
from tether.rl.rollout import HFGenerateRollout
from tether.rl.state import (
    LoopState,
    checkpoint_dir,
    make_controller,
    prepare,
    score_processing,
    sft_baseline,
)
from tether.rl.update import unwrap
from tether.trackers import accelerator_options, tracker_sinks

if TYPE_CHECKING:
    from accelerate import Accelerator
    from transformers import PreTrainedTokenizerBase

    from tether.project import Project
    from tether.rl.plan import RunPlan

SPIKE_MIN_JUMP_SHARE = 0.05
"""Smallest one-step KL rise that can count as a spike, as a share of the spec's budget."""


def open_run_dir(project: Project, run_id: str, plan: RunPlan) -> Path:
    """.tether/rl/<run id>/, seeded with the checkpoint's logs when resuming."""
    from tether.rl.run import copy_resumed_logs

    run_dir = project.path("rl", run_id, "metrics.jsonl").parent
    run_dir.mkdir(parents=True, exist_ok=True)
    copy_resumed_logs(plan, run_dir)
    return run_dir


def fitting_prompts(
    prompts: list[PromptItem], tokenizer: PreTrainedTokenizerBase, limit: int, system: str | None = None
) -> list[PromptItem]:
    """The prompts whose formatted length leaves room for a full response in the context: a longer
    conversation loses whole turns from the oldest (`tether.generation.fitted_prompts`), and a
    prompt still longer than ``limit`` tokens is left out."""
    fitted, ids = fitted_prompts(tokenizer, [p.prompt for p in prompts], budget=limit, system=system)
    kept = [
        p if fit is p.prompt else replace(p, messages=None if isinstance(fit, str) else fit)
        for p, fit, seq in zip(prompts, fitted, ids, strict=True)
        if len(seq) <= limit
    ]
    if not kept:
        raise TetherInputError(f"every pool prompt is longer than {limit} tokens; lower --max-new-tokens")
    return kept


def build_models_for(plan: RunPlan) -> RLModels:
    cfg, resume = plan.cfg, plan.resume
    start = resume.path if resume else (plan.init_policy.path if plan.init_policy else None)
    return build_models(
        plan.sft.path,
        policy_path=start,
        critic_path=resume.critic_path if resume and cfg.algo == "ppo" else None,
        critic_from_rm=plan.reward_model.path if cfg.algo == "ppo" and not resume else None,
        value_init=cfg.value_init,
        seed=cfg.seed,
        lora=cfg.lora_settings,
    )


def train(
    project: Project, plan: RunPlan, run_id: str, io: LoopIO, *, trackers: Sequence[str] = ()
) -> tuple[LoopOutcome, Path]:
    """Steps (3)-(5) and the final checkpoint; returns the loop's outcome and the checkpoint's path.

    Every rank of a data-parallel run calls it; only the one whose `io.run_dir` is set writes.
    `trackers` (checked names) log every step through accelerate; file-based ones write under
    the run directory's trackers/ folder, as `trackers/<run id>/`."""
    cfg = plan.cfg
    # (3) models, optimizer, reward model, rollout engine
    logging_dir = (io.run_dir or project.state_dir) / "trackers"
    accelerator = make_accelerator(**accelerator_options(trackers, logging_dir=logging_dir))
    sinks = tracker_sinks(accelerator, trackers, run_name=run_id, config=cfg.as_dict())
    try:
        return _train(project, plan, run_id, replace(io, trackers=[*io.trackers, *sinks]), accelerator)
    finally:
        for sink in sinks:
            sink.close()


def _train(
    project: Project, plan: RunPlan, run_id: str, io: LoopIO, accelerator: Accelerator
) -> tuple[LoopOutcome, Path]:
    from tether.rl.run import build_suite, kl_budget

    cfg = plan.cfg
    rl_batch_split(cfg, accelerator.num_processes)  # run_rl checked it already; before any model loads
    set_seed(cfg.seed)
    models = build_models_for(plan)
    model, optimizer, scheduler = prepare(models, cfg, accelerator)
    scorer = load_reward_model(plan.reward_model.path, device=str(accelerator.device))
    policy = unwrap(model, accelerator).policy
    system = project.spec.generation.system_prompt
    rollout = HFGenerateRollout(policy, models.tokenizer, cfg.max_new_tokens, cfg.temperature, system)
    budget = context_length(policy) - cfg.max_new_tokens
    prompts = fitting_prompts(plan.prompts, models.tokenizer, budget, system)
    suite = build_suite(project, io.alert_sinks)
    features = features_for(project)  # the gen/* style metrics, with the project's lexicon
    state = LoopState(
        0,
        make_controller(cfg, project.spec.rl),
        # A spike must rise at least 5% of the budget in one step (0.25 nats of the default 5).
        KLSpikeDetector(min_jump=SPIKE_MIN_JUMP_SHARE * project.spec.rl.kl_budget_nats),
        suite,
        PromptSampler(prompts, cfg.seed),
        scheduler,
        ScoreProcessing(),
    )
    # (4) the SFT baseline, or everything restored from the checkpoint
    if plan.resume is not None:
        restore_state(state, plan, optimizer, accelerator.process_index)
    else:
        measure_baseline(state, plan, models, scorer, prompts, features, system)
        seed_rank_stream(cfg.seed, accelerator.process_index)
    ctx = StepContext(
        cfg, model, optimizer, accelerator, models.reference, rollout, scorer, state.processing, plan.sandbox,
        models.reference_off, features,
    )  # fmt: skip
    save = checkpoint_writer(plan, run_id, io, ctx, models)
    # (5) the loop, then the final checkpoint
    evaluate = quick_eval(plan, policy, models.tokenizer)
    outcome = run_loop(
        ctx, make_algorithm(cfg.algo), state, kl_budget(project), replace(io, save=save, evaluate=evaluate)
    )
    return outcome, save(state, outcome)


def measure_baseline(
    state: LoopState,
    plan: RunPlan,
    models: RLModels,
    scorer: Scorer,
    prompts: list[PromptItem],
    features: TextFeatures,
    system: str | None = None,
) -> None:
    """The monitors' SFT baseline and the score normalization, from the frozen reference's samples: the
    same weights as the policy at step 0, unless a warm start moved them. Every rank of a data-parallel
    run measures the same prompts from the same seed, so all hold the same baseline."""
    cfg = plan.cfg
    reference_rollout = HFGenerateRollout(
        models.reference, models.tokenizer, cfg.max_new_tokens, cfg.temperature, system
    )
    with models.reference_off():  # with LoRA, the policy with its adapter off
        baseline, raw = sft_baseline(
            models.reference,
            reference_rollout,
            scorer,
            baseline_prompts(prompts, cfg.baseline_prompts, cfg.seed),
            temperature=cfg.temperature,
            gold=plan.sandbox,
            features=features,
        )
    state.suite.baseline = baseline
    state.processing = score_processing(cfg, raw)


def seed_rank_stream(seed: int, rank: int, step: int = 0) -> None:
    """Rank ≥ 1 gets its own sampling stream: after the shared seed and baseline every rank's global
    generator is in the same state, and ranks that drew the same uniforms for different prompts would
    not be independent samples. Rank 0 keeps the stream a single process has."""
    if rank > 0:
        torch.manual_seed(rank_seed(seed, rank, step))


def restore_state(state: LoopState, plan: RunPlan, optimizer: Any, rank: int) -> None:
    """Everything from the checkpoint; this rank's own RNG state, or a seeded stream of its own when
    the checkpoint was written by fewer processes (then only the sampling differs from an
    uninterrupted run, and with `seed_per_prompt` not even that)."""
    assert plan.resume is not None
    if not state.restore(plan.resume.trainer, optimizer, rank=rank):
        seed_rank_stream(plan.cfg.seed, rank, state.step)


def checkpoint_writer(
    plan: RunPlan, run_id: str, io: LoopIO, ctx: StepContext, models: RLModels
) -> Callable[..., Path]:
    """save(state, outcome=None) -> the checkpoint's path. Every rank calls it at the same step: each
    hands in its RNG state (the gather also keeps the ranks in step), and rank 0 writes them all."""
    from tether.rl.run import run_meta

    accelerator, model, optimizer = ctx.accelerator, ctx.model, ctx.optimizer

    def save(current: LoopState, outcome: LoopOutcome | None = None) -> Path:
        rngs = ctx.ranks.all_gather(rng_state())  # (tensors, JSON) of every rank, in rank order
        out = checkpoint_dir(io.run_dir or Path("."), current.step)
        if accelerator.is_main_process and io.run_dir is not None:
            inner = unwrap(model, accelerator)
            save_checkpoint(
                out,
                policy=inner.policy,
                policy_state=models.merged_policy_state(),
                adapter=models.adapter,
                tokenizer=models.tokenizer,
                critic=inner.critic,
                trainer=current.snapshot(optimizer, rank_rngs=rngs[1:]),
                meta=run_meta(plan, run_id, current.step, outcome, current.suite),
                run_dir=io.run_dir,
            )
        accelerator.wait_for_everyone()
        return out

    return save


def quick_eval(plan: RunPlan, policy: Any, tokenizer: PreTrainedTokenizerBase) -> EvalFn | None:
    """The quick behavioral suite on the live policy, sampled like the rollouts (same length, temperature)."""
    if plan.quick_eval is None:
        return None
    from tether.evals.quick import QuickEval
    from tether.evals.sampling import PolicySampler, SamplingConfig

    sampling = SamplingConfig(max_new_tokens=plan.cfg.max_new_tokens, temperature=plan.cfg.temperature)
    return QuickEval(plan.quick_eval, PolicySampler(policy, tokenizer, sampling))
