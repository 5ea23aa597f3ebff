"""KL estimators between the policy π and the reference (SFT) policy π_ref, per token.

With x sampled from π and r = log π_ref(x) − log π(x) (Schulman, "Approximating KL divergence", 2020):

- k1 = −r            unbiased, high variance, can be negative on single tokens;
- k2 = r²/2          biased, low variance, always ≥ 0;
- k3 = eʳ − 1 − r    unbiased, low variance, always ≥ 0 — but eʳ overflows once the policies
  drift apart on a token (huggingface/trl#3015, verl-project/verl#751 report inf/NaN losses).

Safety: every estimator first makes r finite (NaN → 0, ±inf → ±`LOG_RATIO_CLAMP`) and works in
float32, so fp16/bf16 log-probabilities cannot overflow r²; k3 additionally clamps r to
±`LOG_RATIO_CLAMP` before exponentiating, so k3 ≤ e²⁰ − 21 ≈ 4.9e8, finite in float32. The clamp
only bites on tokens whose probability ratio already exceeds e²⁰ ≈ 5e8, where any estimate is
"enormous" anyway. (OpenRLHF clamps at ±10; 20 keeps k3 exact over a wider range.)

Tether's KL budget is in sequence-level nats: `sequence_kl` sums the per-token values over the
response tokens (as the old TRL and Ziegler et al. did), not a per-token mean (as verl does).

>>> import torch
>>> logp, ref = torch.tensor([[-1.0]]), torch.tensor([[-2.0]])   # r = −1
>>> [round(kl_per_token(logp, ref, k).item(), 4) for k in ("k1", "k2", "k3")]
[1.0, 0.5, 0.3679]
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from tether.rl.masked import masked_sum

KLEstimator = Literal["k1", "k2", "k3"]
KL_ESTIMATORS: tuple[KLEstimator, ...] = get_args(KLEstimator)
LOG_RATIO_CLAMP = 20.0
"""|r| bound, in nats per token, applied before k3's exponential (TRL#3015, verl#751)."""


def log_ratio(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """r = log π_ref − log π per token, float32 and finite. (B, T), (B, T) -> (B, T).

    NaN (both log-probabilities −inf, which a sampled token cannot have) becomes 0; ±inf
    becomes ±`LOG_RATIO_CLAMP`."""
    r = ref_logprobs.float() - logprobs.float()  # (B, T)
    return torch.nan_to_num(r, nan=0.0, posinf=LOG_RATIO_CLAMP, neginf=-LOG_RATIO_CLAMP)


def k1(r: torch.Tensor) -> torch.Tensor:
    """−r: the plain log-ratio estimator, the classic in-reward penalty (Ziegler et al. 2019)."""
    return -r


def k2(r: torch.Tensor) -> torch.Tensor:
    """r²/2: low variance, biased; its gradient is the reverse-KL gradient on-policy."""
    return 0.5 * r**2


def k3(r: torch.Tensor, clamp: float = LOG_RATIO_CLAMP) -> torch.Tensor:
    """eʳ − 1 − r with r clamped to ±clamp first, so the result is finite and ≥ 0.

    `expm1` keeps precision for small |r|, where eʳ − 1 would cancel."""
    r = r.float().clamp(-clamp, clamp)
    return torch.expm1(r) - r


def kl_per_token(
    logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: KLEstimator = "k1"
) -> torch.Tensor:
    """Per-token KL(π ‖ π_ref) estimate. (B, T), (B, T) -> (B, T) float32, finite."""
    r = log_ratio(logprobs, ref_logprobs)  # (B, T)
    if estimator == "k1":
        return k1(r)
    if estimator == "k2":
        return k2(r)
    if estimator == "k3":
        return k3(r)
    raise ValueError(f"unknown KL estimator {estimator!r}; choose one of {', '.join(KL_ESTIMATORS)}")


def sequence_kl(kl_tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sequence-level KL in nats: the sum over each row's response tokens. (B, T) -> (B,)."""
    return masked_sum(kl_tokens, mask, dim=1)  # (B,)
