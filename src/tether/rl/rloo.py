"""RLOO: REINFORCE with a leave-one-out baseline over k samples per prompt, no critic.

    tether rl run --algo rloo --samples-per-prompt 4

One step (Ahmadian et al. 2024; TRL's RLOOTrainer): (1) sample prompts, each k times (2) generate
(3) score with the RM (4) log-probabilities of policy and reference (5) sequence reward
score − β·Σ KL (k1 in the reward, as TRL) (6) leave-one-out advantages, optionally whitened,
given to every token of the response (7) `ppo_epochs` passes of the clipped surrogate over
minibatches (8) metrics.

Departure: TRL takes one gradient step per generation batch by default; here the same
`ppo_epochs`/`minibatches` as PPO apply, so the two algorithms differ only in their advantages.
With `--ppo-epochs 1 --minibatches 1` (TRL's default) the step runs one policy forward fewer than
TRL's: the forward that gives the rollout's log-probabilities keeps its graph for the update
(`collect_experience_with_graph`), where TRL recomputes the same numbers under no_grad first.
"""

from __future__ import annotations

from tether.rl.advantages import rloo_advantages
from tether.rl.algorithm import (
    StepContext,
    StepOutput,
    finish_step,
    sample_and_collect,
    sample_and_collect_with_graph,
)
from tether.rl.global_batch import global_standardize
from tether.rl.kl import sequence_kl
from tether.rl.prompts import PromptSampler
from tether.rl.update import Targets, ppo_update, single_pass_update


class RLOO:
    name = "rloo"

    def step(self, ctx: StepContext, step: int, sampler: PromptSampler, beta: float) -> StepOutput:
        cfg = ctx.cfg
        # (1)-(5) prompts (k adjacent samples each), rollouts, scores, log-probabilities, per-token KL;
        # with one gradient step per batch the policy's forward keeps its graph for step (7)
        logprobs = None
        if cfg.single_pass:
            exp, logprobs = sample_and_collect_with_graph(ctx, sampler, step)
        else:
            exp = sample_and_collect(ctx, sampler, step)
        # (5b) sequence rewards with the KL penalty inside
        rewards = exp.scores - beta * sequence_kl(exp.kl, exp.mask)  # (B,)
        # (6) leave-one-out advantages, one per response (a prompt's group is on one rank), whitened
        # over the global batch, spread over its tokens
        advantages = rloo_advantages(rewards, cfg.samples_per_prompt)  # (B,)
        if cfg.whiten:
            advantages = global_standardize(advantages, ctx.ranks)
        token_adv = advantages.unsqueeze(1) * exp.mask.float()  # (B, 1) * (B, R) -> (B, R)
        # (7) clipped policy updates
        targets = Targets(token_adv, None)
        if logprobs is not None:
            updates = single_pass_update(
                ctx.model, ctx.optimizer, exp, logprobs, targets, cfg, accelerator=ctx.accelerator
            )
        else:
            updates = ppo_update(
                ctx.model, ctx.optimizer, exp, targets, cfg, accelerator=ctx.accelerator, step=step
            )
        # (8) metrics (no critic: no value loss, no explained variance)
        for key in ("losses/value_loss", "val/clipfrac"):
            updates.pop(key, None)
        return finish_step(ctx, exp, beta, updates)
