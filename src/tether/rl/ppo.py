"""PPO with a critic, GAE and a per-token KL penalty against the SFT policy.

    tether rl run --algo ppo --steps 200

One step, in order (Ziegler et al. 2019; Stiennon et al. 2020; Ouyang et al. 2022; TRL's old PPOTrainer):
(1) sample prompts (2) generate (3) score with the RM (4) log-probabilities of policy and reference,
critic values (5) per-token KL and shaped rewards −β·KL + score on the last token (6) GAE advantages,
whitened (7) `ppo_epochs` passes of clipped policy + value updates over minibatches with gradient-norm
clipping (8) metrics.

Departures: the critic is a separate sequence-classification model read at every token, initialized
from the reward model (PPO-max) rather than a value head on the policy, so policy and critic share no
parameters (with LoRA, `--lora`, it is a value head on the policy trained with the adapter instead:
`tether.rl.lora`); there is no pretraining-mix (PPO-ptx) loss term; scores are normalized with a mean
and std measured once on SFT samples (Ziegler et al.), not a running estimate.
"""

from __future__ import annotations

from functools import partial

from tether.rl.advantages import gae
from tether.rl.algorithm import StepContext, StepOutput, finish_step, sample_and_collect
from tether.rl.global_batch import global_variance, global_whiten
from tether.rl.metrics import explained_variance_metric
from tether.rl.prompts import PromptSampler
from tether.rl.rewards import shaped_rewards
from tether.rl.update import Targets, ppo_update


class PPO:
    name = "ppo"

    def step(self, ctx: StepContext, step: int, sampler: PromptSampler, beta: float) -> StepOutput:
        cfg = ctx.cfg
        # (1)-(5) prompts, rollouts, scores, log-probabilities, values, per-token KL
        exp = sample_and_collect(ctx, sampler, step)
        if exp.values is None:
            raise RuntimeError("PPO needs a critic; the models were built without one")
        # (5b) shaped rewards: −β·KL on every token, the score on the last one
        rewards = shaped_rewards(exp.scores, exp.kl, exp.mask, beta)  # (B, R)
        # (6) advantages: GAE on the critic's values, whitened over the global batch's tokens
        advantages, returns = gae(rewards, exp.values, exp.mask, cfg.gamma, cfg.lam)  # (B, R), (B, R)
        if cfg.whiten:
            advantages = global_whiten(advantages, exp.mask, ctx.ranks)
        # (7) clipped policy and value updates
        updates = ppo_update(
            ctx.model,
            ctx.optimizer,
            exp,
            Targets(advantages, returns),
            cfg,
            accelerator=ctx.accelerator,
            step=step,
        )
        # (8) metrics; the explained variance is the global batch's already
        variance = partial(global_variance, ranks=ctx.ranks)
        explained = explained_variance_metric(exp.values, returns, exp.mask, variance)
        return finish_step(ctx, exp, beta, updates, exact=explained)
