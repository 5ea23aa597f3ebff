"""The Bradley–Terry loss and pairwise accuracy, as pure functions of the two reward vectors.

>>> import torch
>>> round(bradley_terry_loss(torch.tensor([1.0]), torch.tensor([0.0])).item(), 4)
0.3133
>>> pair_accuracy(torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, 3.0])).item()
0.3333333432674408
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(
    r_chosen: torch.Tensor,
    r_rejected: torch.Tensor,
    margin: torch.Tensor | None = None,
    center_coef: float = 0.0,
) -> torch.Tensor:
    """Mean −log σ(r_c − r_r − m) over the pairs, plus center_coef·mean((r_c + r_r)²).

    The margin m (Llama 2) asks for a larger gap on pairs the raters preferred strongly. The
    centering term (TRL's `center_rewards_coefficient`) pins the rewards' offset, which the
    pairwise loss alone leaves free, near zero. All inputs are (B,)."""
    gap = r_chosen - r_rejected  # (B,)
    if margin is not None:
        gap = gap - margin
    loss = -F.logsigmoid(gap).mean()
    if center_coef:
        loss = loss + center_coef * ((r_chosen + r_rejected) ** 2).mean()
    return loss


def pair_accuracy(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Share of pairs with r_c > r_r strictly: a tie counts as wrong, as in RewardBench. A 0-dim tensor."""
    return (r_chosen > r_rejected).float().mean()
