"""PPO losses (Schulman et al. 2017) and the health metrics logged with them.

Aggregation is a token mean over every response token of the batch (TRL/verl "token-mean"):
long responses weigh more than short ones, and padding weighs nothing. With N data-parallel ranks the
mean is over the GLOBAL (mini)batch's tokens: the caller passes `token_mean` =
`tether.rl.global_batch.global_token_mean`, under which each rank's loss is its share Σ_rank / N_global · W,
and DDP's average of the ranks' gradients is then the gradient of the global token mean, the same as
one process computes on the whole batch. On one process `token_mean` is `masked_mean` itself.

Metrics, named as CleanRL logs them, which the hacking monitors read:

- ``clipfrac``: share of tokens whose ratio left [1 − ε, 1 + ε] (`policy/clipfrac`);
- ``approx_kl``: k3 of the old policy vs the new one on the tokens the old policy sampled,
  e^ρ − 1 − ρ with ρ = log π_new − log π_old (`policy/approx_kl`);
- `explained_variance`: 1 − Var(R − V)/Var(R) (`val/explained_variance`).

>>> import torch
>>> logp = torch.zeros(1, 2); adv = torch.tensor([[1.0, -1.0]]); m = torch.ones(1, 2)
>>> out = ppo_policy_loss(logp, logp, adv, m)
>>> out.loss.item(), out.clipfrac.item(), out.approx_kl.item()
(0.0, 0.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from tether.rl.kl import LOG_RATIO_CLAMP, k3
from tether.rl.masked import masked_mean, masked_var

TokenMean = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(x, mask) -> 0-dim token mean (see `tether.rl.global_batch.global_token_mean`)."""


@dataclass(frozen=True)
class PolicyLossOutput:
    loss: torch.Tensor
    """0-dim, differentiable: the clipped surrogate to minimize."""
    clipfrac: torch.Tensor
    """0-dim, detached: share of response tokens where clipping was active."""
    approx_kl: torch.Tensor
    """0-dim, detached: k3 estimate of KL(π_old ‖ π_new) per token."""


@dataclass(frozen=True)
class ValueLossOutput:
    loss: torch.Tensor
    """0-dim, differentiable: ½·max of the clipped and unclipped squared errors."""
    clipfrac: torch.Tensor
    """0-dim, detached: share of tokens where the clipped error was the larger."""


def ppo_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float = 0.2,
    token_mean: TokenMean = masked_mean,
) -> PolicyLossOutput:
    """Clipped surrogate: mean of max(−A·ρ, −A·clip(ρ, 1 − ε, 1 + ε)), ρ = π_new/π_old. All (B, T).

    The log-ratio is clamped to ±`LOG_RATIO_CLAMP` before exponentiating so a diverged token cannot
    produce inf (its gradient is then 0; such a step is broken anyway and approx_kl shows it)."""
    log_ratio = (logprobs.float() - old_logprobs.float()).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (B, T)
    ratio = torch.exp(log_ratio)  # (B, T)
    adv = advantages.float().detach()  # (B, T)
    unclipped = -adv * ratio  # (B, T)
    clipped = -adv * ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps)  # (B, T)
    loss = token_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clipfrac = token_mean(((ratio - 1.0).abs() > clip_eps).float(), mask)
        approx_kl = token_mean(k3(log_ratio), mask)
    return PolicyLossOutput(loss=loss, clipfrac=clipfrac, approx_kl=approx_kl)


def clipped_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float = 0.2,
    token_mean: TokenMean = masked_mean,
) -> ValueLossOutput:
    """PPO2's value clipping (baselines ppo2; kept by Secrets of RLHF/PPO-max). All (B, T).

    The new value may move at most ``clip_range`` from the rollout's value before the update
    stops rewarding it: loss = ½·mean(max((V − R)², (V_clip − R)²)),
    V_clip = V_old + clip(V − V_old, −c, c)."""
    v, target = values.float(), returns.float().detach()  # (B, T)
    v_clipped = old_values.float() + (v - old_values.float()).clamp(-clip_range, clip_range)  # (B, T)
    err, err_clipped = (v - target) ** 2, (v_clipped - target) ** 2  # (B, T)
    loss = 0.5 * token_mean(torch.maximum(err, err_clipped), mask)
    with torch.no_grad():
        clipfrac = token_mean((err_clipped > err).float(), mask)
    return ValueLossOutput(loss=loss, clipfrac=clipfrac)


def explained_variance(
    values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    variance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = masked_var,
) -> float:
    """1 − Var(R − V)/Var(R) over the response tokens; NaN when the returns do not vary (as CleanRL).

    1 is a perfect critic, 0 no better than a constant, negative worse than one. `variance` is the
    global batch's with N ranks (`tether.rl.global_batch.global_variance`)."""
    with torch.no_grad():
        var_returns = variance(returns.float(), mask)
        if var_returns.item() == 0:
            return float("nan")
        residual = variance(returns.float() - values.float(), mask)
        return float(1.0 - residual / var_returns)
