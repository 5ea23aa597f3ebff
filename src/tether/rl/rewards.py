"""Per-token rewards for PPO: a KL penalty on every token plus the reward model's score at the end.

The classic RLHF recipe (Ziegler et al. 2019; Stiennon et al. 2020; InstructGPT, Ouyang et al.
2022): R(x, y) = r_RM(x, y) − β·KL(π ‖ π_ref), spread over tokens as

    reward[t] = −β·kl[t]                       for every response token t
    reward[last] += score                      on the last response token only

with kl the k1 estimate by default (it is what the budget's expectation is of). Optional score
processing, both off by default and applied by the caller before shaping:

- `normalize_scores`: subtract a fixed mean and divide by a fixed std measured once on SFT
  samples (Ziegler et al. normalize the reward model to mean 0, std 1 on the initial policy), so
  that β means the same thing across reward models;
- `clip_scores`: clip to ±bound (Secrets of RLHF/PPO-max, Zheng et al. 2023), so that a few
  outlier scores cannot dominate a batch's advantages.

>>> import torch
>>> kl = torch.tensor([[0.5, 1.0, 0.0]]); mask = torch.tensor([[1, 1, 0]])
>>> [round(v, 4) for v in shaped_rewards(torch.tensor([2.0]), kl, mask, beta=0.1)[0].tolist()]
[-0.05, 1.9, 0.0]
"""

from __future__ import annotations

import torch


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last response token. (B, T) -> (B,) long; −1 for an empty row."""
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)  # (B, T)
    return torch.where(mask.bool(), positions, torch.full_like(positions, -1)).max(dim=1).values  # (B,)


def shaped_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-token rewards −β·kl, plus ``scores`` on each row's last response token.

    scores (B,), kl (B, T), mask (B, T) -> (B, T) float32; 0 on padding. A row without response
    tokens gets no reward at all (there is no token to credit)."""
    penalty = -beta * kl.float()  # (B, T)
    rewards = torch.where(mask.bool(), penalty, torch.zeros_like(penalty))  # (B, T)
    last = last_token_index(mask)  # (B,)
    rows = torch.nonzero(last >= 0).squeeze(-1)  # (B',)
    rewards[rows, last[rows]] += scores.float()[rows]
    return rewards


def normalize_scores(scores: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """(scores − mean) / std with a fixed mean and std measured on SFT samples. (B,) -> (B,)."""
    if std <= 0:
        raise ValueError(f"normalize_scores: std must be > 0, got {std}; measure it on more than one sample")
    return (scores.float() - mean) / std


def clip_scores(scores: torch.Tensor, bound: float) -> torch.Tensor:
    """Scores clipped to [−bound, bound]. (B,) -> (B,)."""
    if bound <= 0:
        raise ValueError(f"clip_scores: bound must be > 0, got {bound}")
    return scores.float().clamp(-bound, bound)
