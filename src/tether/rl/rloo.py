"""RLOO: REINFORCE with a leave-one-out baseline over k samples per prompt, no critic.

    tether rl run --algo rloo --samples-per-prompt 4

One step (Ahmadian et al. 2024; TRL's RLOOTrainer): (1) sample prompts, each k times (2) generate
(3) score with the RM (4) log-probabilities of policy and reference (5) sequence reward
score − β·Σ KL (k1 in the reward, as TRL) (6) leave-one-out advantages, optionally whitened,
given to every token of the response (7) `ppo_epochs` passes of the clipped surrogate over
minibatches (8) metrics.

Departure: TRL takes one gradient step per generation batch by default; here the same
`ppo_epochs`/`minibatches` as PPO apply, so the two algorithms differ only in their advantages.
"""

from __future__ import annotations

from tether.rl.advantages import rloo_advantages
from tether.rl.algorithm import StepContext, StepOutput, reduce_metrics, sample_and_collect
from tether.rl.kl import sequence_kl
from tether.rl.metrics import rollout_metrics
from tether.rl.prompts import PromptSampler
from tether.rl.update import Targets, ppo_update


class RLOO:
    name = "rloo"

    def step(self, ctx: StepContext, step: int, sampler: PromptSampler, beta: float) -> StepOutput:
        cfg = ctx.cfg
        # (1)-(5) prompts (k adjacent samples each), rollouts, scores, log-probabilities, per-token KL
        exp = sample_and_collect(ctx, sampler, beta)
        # (5b) sequence rewards with the KL penalty inside
        rewards = exp.scores - beta * sequence_kl(exp.kl, exp.mask)  # (B,)
        # (6) leave-one-out advantages, one per response, spread over its tokens
        advantages = rloo_advantages(rewards, cfg.samples_per_prompt)  # (B,)
        if cfg.whiten and advantages.numel() > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        token_adv = advantages.unsqueeze(1) * exp.mask.float()  # (B, 1) * (B, R) -> (B, R)
        # (7) clipped policy updates
        updates = ppo_update(
            ctx.model,
            ctx.optimizer,
            exp,
            Targets(token_adv, None),
            cfg,
            accelerator=ctx.accelerator,
            step=step,
        )
        # (8) metrics (no critic: no value loss, no explained variance)
        metrics = {**rollout_metrics(exp, beta, gold=ctx.gold), **updates}
        for key in ("losses/value_loss", "val/clipfrac"):
            metrics.pop(key, None)
        return StepOutput(reduce_metrics(metrics, ctx.accelerator), exp)
