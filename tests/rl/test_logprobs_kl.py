"""Log-probabilities, entropy and the KL estimators against hand-computed values and extreme logits."""

from __future__ import annotations

import math

import pytest
import torch

from tether.rl.kl import LOG_RATIO_CLAMP, k3, kl_per_token, log_ratio, sequence_kl
from tether.rl.logprobs import entropy_from_logits, token_logprobs


def test_token_logprobs_by_hand() -> None:
    # Row 0: logits [0, ln 3] -> p = [1/4, 3/4]; row 1 uniform over 2.
    logits = torch.tensor([[[0.0, math.log(3.0)], [0.0, 0.0]]])  # (1, 2, 2)
    tokens = torch.tensor([[1, 0]])
    out = token_logprobs(logits, tokens)
    assert out.shape == (1, 2)
    assert out[0].tolist() == pytest.approx([math.log(0.75), math.log(0.5)], abs=1e-6)
    assert torch.allclose(out, torch.log_softmax(logits, -1).gather(-1, tokens[..., None]).squeeze(-1))


def test_entropy_by_hand_and_with_masked_vocabulary() -> None:
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, -math.inf, -math.inf]]])
    h = entropy_from_logits(logits)
    assert h[0].tolist() == pytest.approx([math.log(4.0), math.log(2.0)], abs=1e-6)


def test_logprobs_are_float32_and_finite_for_fp16_extremes() -> None:
    logits = torch.tensor([[[65504.0, -65504.0, 0.0]]], dtype=torch.float16)
    out = token_logprobs(logits, torch.tensor([[1]]))
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.item() == pytest.approx(-131008.0)
    assert torch.isfinite(entropy_from_logits(logits)).all()


def test_estimators_by_hand() -> None:
    logp = torch.tensor([[-1.0, -2.0, -0.5]])
    ref = torch.tensor([[-2.0, -1.0, -0.5]])  # r = [-1, 1, 0]
    assert kl_per_token(logp, ref, "k1")[0].tolist() == pytest.approx([1.0, -1.0, 0.0])
    assert kl_per_token(logp, ref, "k2")[0].tolist() == pytest.approx([0.5, 0.5, 0.0])
    expected_k3 = [math.exp(-1) - 1 + 1, math.exp(1) - 1 - 1, 0.0]
    assert kl_per_token(logp, ref, "k3")[0].tolist() == pytest.approx(expected_k3, abs=1e-6)


def test_unknown_estimator_is_named() -> None:
    with pytest.raises(ValueError, match="k1, k2, k3"):
        kl_per_token(torch.zeros(1, 1), torch.zeros(1, 1), "k4")  # type: ignore[arg-type]


@pytest.mark.parametrize("scale", [1e4, 65504.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_k3_never_inf_or_nan_for_extreme_logits(scale: float, dtype: torch.dtype) -> None:
    # Policy and reference put opposite extreme logits on the same tokens: |r| is huge both ways.
    policy_logits = torch.tensor([[[scale, -scale], [-scale, scale]]]).to(dtype)
    ref_logits = -policy_logits
    tokens = torch.tensor([[0, 0]])
    logp, ref = token_logprobs(policy_logits, tokens), token_logprobs(ref_logits, tokens)
    for estimator in ("k1", "k2", "k3"):
        kl = kl_per_token(logp, ref, estimator)
        assert torch.isfinite(kl).all(), (estimator, kl)
    kl3 = kl_per_token(logp, ref, "k3")
    assert (kl3 >= 0).all()
    assert kl3.max().item() == pytest.approx(math.expm1(LOG_RATIO_CLAMP) - LOG_RATIO_CLAMP, rel=1e-5)


def test_log_ratio_makes_inf_and_nan_finite() -> None:
    logp = torch.tensor([[-math.inf, 0.0, -math.inf]])
    ref = torch.tensor([[0.0, -math.inf, -math.inf]])
    r = log_ratio(logp, ref)
    assert r.tolist() == [[LOG_RATIO_CLAMP, -LOG_RATIO_CLAMP, 0.0]]
    assert torch.isfinite(k3(torch.tensor([math.inf, -math.inf, 1e9]))).all()


def test_k3_is_precise_near_zero() -> None:
    # e^r - 1 - r ≈ r²/2 for small r; naive exp(r) - 1 - r in float32 loses it to cancellation.
    r = torch.tensor([1e-4])
    assert k3(r).item() == pytest.approx(5e-9, rel=1e-3)


def test_sequence_kl_sums_response_tokens_only() -> None:
    kl = torch.tensor([[0.5, 1.0, 7.0], [2.0, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert sequence_kl(kl, mask).tolist() == [1.5, 2.0]
