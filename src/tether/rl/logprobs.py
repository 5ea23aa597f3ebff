"""Per-token log-probabilities and entropies from a causal LM's logits.

Both work in float32 whatever the logits' dtype: a bf16/fp16 log-softmax over a large vocabulary
loses the small differences between policy and reference that the KL penalty is made of.
The caller aligns logits and tokens: ``logits[:, t]`` must be the distribution that produced
``tokens[:, t]`` (for an HF model, the logits at position t−1 of the full sequence).

>>> import torch
>>> logits = torch.tensor([[[0.0, 0.0]]])
>>> round(token_logprobs(logits, torch.tensor([[1]])).item(), 4), round(entropy_from_logits(logits).item(), 4)
(-0.6931, 0.6931)
"""

from __future__ import annotations

import torch


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log softmax(logits) at the taken tokens. logits (B, T, V), tokens (B, T) -> (B, T) float32.

    Computed as z_taken − logsumexp(z), which never materializes the (B, T, V) log-softmax
    (TRL's `selective_log_softmax` does the same for memory)."""
    z = logits.float()  # (B, T, V)
    taken = z.gather(-1, tokens.long().unsqueeze(-1)).squeeze(-1)  # (B, T)
    return taken - torch.logsumexp(z, dim=-1)  # (B, T)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy −Σ p log p of each next-token distribution, in nats. (B, T, V) -> (B, T) float32.

    Tokens with probability 0 (for instance −inf logits from a vocabulary mask) contribute 0
    rather than 0·(−inf) = NaN."""
    logp = torch.log_softmax(logits.float(), dim=-1)  # (B, T, V)
    p = logp.exp()  # (B, T, V)
    plogp = torch.where(p > 0, p * logp, torch.zeros_like(p))  # (B, T, V)
    return -plogp.sum(dim=-1)  # (B, T)
