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
    tie: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean −log σ(r_c − r_r − m) over the pairs, plus center_coef·mean((r_c + r_r)²).

    The margin m (Llama 2) asks for a larger gap on pairs the raters preferred strongly. The
    centering term (TRL's `center_rewards_coefficient`) pins the rewards' offset, which the
    pairwise loss alone leaves free, near zero. A tie pair (``tie``, bool) instead gets the cross
    entropy against probability ½, −½·log σ(g) − ½·log σ(−g) with g = r_c − r_r, smallest at g = 0:
    "neither is better" pulls the two rewards together (`tie_loss`). All inputs are (B,)."""
    gap = r_chosen - r_rejected  # (B,)
    if margin is not None:
        gap = gap - margin
    if tie is not None and bool(tie.any()):
        per_pair = torch.where(tie, tie_loss(r_chosen - r_rejected), -F.logsigmoid(gap))  # (B,)
        loss = per_pair.mean()
    else:  # no tie in the batch: exactly the plain loss
        loss = -F.logsigmoid(gap).mean()
    if center_coef:
        loss = loss + center_coef * ((r_chosen + r_rejected) ** 2).mean()
    return loss


def tie_loss(gap: torch.Tensor) -> torch.Tensor:
    """Per pair −½·log σ(g) − ½·log σ(−g): the Bradley–Terry likelihood's cross entropy at target ½.

    >>> round(tie_loss(torch.tensor([0.0])).item(), 4)  # log 2, its minimum
    0.6931
    >>> round(tie_loss(torch.tensor([2.0])).item(), 4)  # ½·(0.1269 + 2.1269)
    1.1269
    """
    return -0.5 * (F.logsigmoid(gap) + F.logsigmoid(-gap))


def pair_accuracy(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Share of pairs with r_c > r_r strictly: a tie counts as wrong, as in RewardBench. A 0-dim tensor."""
    return (r_chosen > r_rejected).float().mean()


def decided_accuracy(
    r_chosen: torch.Tensor, r_rejected: torch.Tensor, tie: torch.Tensor | None
) -> torch.Tensor:
    """`pair_accuracy` over the pairs that are not ties (a tie has no right order); NaN when all are."""
    if tie is None or not bool(tie.any()):
        return pair_accuracy(r_chosen, r_rejected)
    decided = ~tie
    if not bool(decided.any()):
        return torch.tensor(float("nan"), device=r_chosen.device)
    return pair_accuracy(r_chosen[decided], r_rejected[decided])
