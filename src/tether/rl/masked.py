"""Reductions over the response tokens of a padded batch. Every input is (B, T) with a (B, T) mask.

>>> import torch
>>> x = torch.tensor([[1.0, 2.0, 9.0], [3.0, 9.0, 9.0]])
>>> m = torch.tensor([[1, 1, 0], [1, 0, 0]])
>>> masked_mean(x, m).item(), masked_sum(x, m, dim=1).tolist()
(2.0, [3.0, 3.0])
"""

from __future__ import annotations

import torch


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Sum of ``x`` where ``mask`` is set; over all entries, or along ``dim``. Padding is selected
    out, not multiplied by 0, so garbage there (NaN logits after the end of a response) stays out."""
    kept = torch.where(mask.bool(), x, torch.zeros_like(x))  # (B, T)
    return kept.sum() if dim is None else kept.sum(dim=dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` over the masked entries. An empty row or batch gives 0, not NaN, so a batch
    whose responses were all cut off contributes nothing instead of poisoning the loss."""
    count = mask.to(x.dtype).sum() if dim is None else mask.to(x.dtype).sum(dim=dim)
    return masked_sum(x, mask, dim) / count.clamp(min=1.0)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of ``x`` over all masked entries (a 0-dim tensor).

    Unbiased (Bessel's n/(n−1)) by default, as TRL's `masked_var`; with a single entry the
    correction is undefined and the (biased) variance 0 is returned."""
    n = mask.to(x.dtype).sum()
    if n.item() == 0:
        raise ValueError("masked_var: the mask selects no entries; a batch needs at least one response token")
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    if unbiased and n.item() > 1:
        var = var * n / (n - 1)
    return var
