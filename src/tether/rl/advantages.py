"""Advantages: GAE for PPO with a critic, and group baselines (RLOO, GRPO-style) without one.

GAE (Schulman et al. 2016) on right-padded (B, T) batches, back to front:

    δ[t] = r[t] + γ·m[t+1]·V[t+1] − V[t]
    A[t] = δ[t] + γλ·m[t+1]·A[t+1]

where m is the response mask: the value after the last response token is 0 (the episode ends
there), and padding gets advantage 0. Returns are A + V, the critic's regression targets.

Group baselines take one scalar score per sampled response. The batch holds n prompts × k
samples with each prompt's k samples CONTIGUOUS: rows [i·k, (i+1)·k) belong to prompt i.

>>> import torch
>>> rloo_advantages(torch.tensor([1.0, 2.0, 6.0]), group_size=3).tolist()
[-3.0, -1.5, 4.5]
"""

from __future__ import annotations

import torch

from tether.rl.masked import masked_mean, masked_var


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimates and returns. rewards, values, mask (B, T) -> ((B, T), (B, T)).

    γ = 1 is the usual choice for RLHF (the episode is one response, Ziegler et al. 2019);
    λ = 0.95 as in TRL's PPO. Both outputs are 0 on padding."""
    m = mask.float()  # (B, T)
    r = torch.where(mask.bool(), rewards.float(), torch.zeros_like(m))  # (B, T)
    v = torch.where(mask.bool(), values.float(), torch.zeros_like(m))  # (B, T)
    n_tokens = r.shape[1]
    advantages = torch.zeros_like(r)  # (B, T)
    next_value = torch.zeros_like(r[:, 0])  # (B,)
    next_adv = torch.zeros_like(r[:, 0])  # (B,)
    next_mask = torch.zeros_like(r[:, 0])  # (B,)
    for t in reversed(range(n_tokens)):
        delta = r[:, t] + gamma * next_mask * next_value - v[:, t]  # (B,)
        advantages[:, t] = (delta + gamma * lam * next_mask * next_adv) * m[:, t]
        next_value, next_adv, next_mask = v[:, t], advantages[:, t], m[:, t]
    returns = (advantages + v) * m  # (B, T)
    return advantages, returns


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """(x − mean)/std over the masked entries; with ``shift_mean=False`` the mean is added back
    (only the scale changes, as TRL does for rewards). (B, T) -> (B, T), 0 on padding."""
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    out = (x - mean) * torch.rsqrt(var + eps)  # (B, T)
    if not shift_mean:
        out = out + mean
    return torch.where(mask.bool(), out, torch.zeros_like(out))


def _groups(scores: torch.Tensor, group_size: int) -> torch.Tensor:
    """(B,) -> (n, k), checking that the batch splits into whole groups of at least 2."""
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 (a baseline needs other samples), got {group_size}")
    if scores.ndim != 1 or scores.shape[0] % group_size:
        raise ValueError(
            f"scores must be 1-D with a length divisible by group_size={group_size}, "
            f"got shape {tuple(scores.shape)}"
        )
    return scores.float().view(-1, group_size)  # (n, k)


def rloo_advantages(scores: torch.Tensor, group_size: int) -> torch.Tensor:
    """REINFORCE leave-one-out (Ahmadian et al. 2024; Kool et al. 2019): each sample's baseline is
    the mean score of the OTHER k−1 samples of its prompt. (B,) -> (B,).

    A_i = s_i − (Σ_j s_j − s_i)/(k − 1); unbiased, because the baseline does not depend on s_i."""
    s = _groups(scores, group_size)  # (n, k)
    baseline = (s.sum(dim=1, keepdim=True) - s) / (group_size - 1)  # (n, k)
    return (s - baseline).view(-1)  # (B,)


def group_normalized_advantages(
    scores: torch.Tensor, group_size: int, scale: bool = True, eps: float = 1e-4
) -> torch.Tensor:
    """GRPO-style (Shao et al. 2024): (s_i − mean of its group) / (std of its group + eps). (B,) -> (B,).

    The std is the unbiased one (as TRL's GRPO). ``scale=False`` keeps only the mean subtraction,
    as Dr. GRPO (Liu et al. 2025) recommends: dividing by the std up-weights prompts whose samples
    barely differ. eps = 1e-4 as in TRL keeps an all-equal group at advantage 0."""
    s = _groups(scores, group_size)  # (n, k)
    centered = s - s.mean(dim=1, keepdim=True)  # (n, k)
    if scale:
        centered = centered / (s.std(dim=1, keepdim=True) + eps)
    return centered.view(-1)  # (B,)
