"""PPO policy and value losses and their health metrics, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from tether.rl.losses import clipped_value_loss, explained_variance, ppo_policy_loss


def test_policy_loss_clips_by_hand() -> None:
    old = torch.zeros(1, 4)
    # Ratios e^x: 1.5 (A>0, clipped to 1.2), 0.5 (A>0, unclipped: max picks −0.5), 1.1, padding.
    new = torch.log(torch.tensor([[1.5, 0.5, 1.1, 9.0]]))
    adv = torch.tensor([[1.0, 1.0, -2.0, 5.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    out = ppo_policy_loss(new, old, adv, mask, clip_eps=0.2)
    # Per-token max(−Aρ, −A·clip ρ): [−1.2, −0.5, 2.2] -> mean 0.5/3.
    assert out.loss.item() == pytest.approx((-1.2 - 0.5 + 2.2) / 3)
    assert out.clipfrac.item() == pytest.approx(2 / 3)  # 1.5 and 0.5 are outside [0.8, 1.2]
    k3 = [r - 1 - math.log(r) for r in (1.5, 0.5, 1.1)]
    assert out.approx_kl.item() == pytest.approx(sum(k3) / 3, rel=1e-5)


def test_policy_loss_gradient_vanishes_on_clipped_tokens() -> None:
    new = torch.log(torch.tensor([[1.5, 1.0]])).requires_grad_()
    out = ppo_policy_loss(new, torch.zeros(1, 2), torch.ones(1, 2), torch.ones(1, 2))
    out.loss.backward()
    assert new.grad is not None
    assert new.grad[0].tolist() == pytest.approx([0.0, -0.5])  # d(−ρ/2)/dlogρ = −ρ/2 at ρ = 1


def test_policy_loss_is_finite_for_diverged_tokens() -> None:
    new = torch.tensor([[1e4, -1e4]])
    out = ppo_policy_loss(new, torch.zeros(1, 2), torch.tensor([[-1.0, 1.0]]), torch.ones(1, 2))
    assert all(math.isfinite(t.item()) for t in (out.loss, out.clipfrac, out.approx_kl))


def test_value_loss_clipping_by_hand() -> None:
    old = torch.tensor([[0.0, 0.0]])
    values = torch.tensor([[1.0, 0.1]])
    returns = torch.tensor([[0.0, 1.0]])
    out = clipped_value_loss(values, old, returns, torch.ones(1, 2), clip_range=0.2)
    # Token 0: err 1, clipped V 0.2 -> err 0.04; max 1. Token 1: err 0.81, V_clip 0.1 -> 0.81.
    assert out.loss.item() == pytest.approx(0.5 * (1.0 + 0.81) / 2)
    assert out.clipfrac.item() == 0.0
    moved_away = clipped_value_loss(
        torch.tensor([[-1.0]]), torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1)
    )
    # V −1: err 4; V_clip −0.2: err 1.44 -> unclipped wins; clipfrac 0.
    assert moved_away.loss.item() == pytest.approx(2.0) and moved_away.clipfrac.item() == 0.0
    toward = clipped_value_loss(torch.tensor([[2.0]]), torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1))
    # V 2: err 1; V_clip 0.2: err 0.64 -> unclipped; overshoot past the target is still penalized.
    assert toward.loss.item() == pytest.approx(0.5)
    stuck = clipped_value_loss(
        torch.tensor([[0.5]]), torch.zeros(1, 1), torch.full((1, 1), 2.0), torch.ones(1, 1)
    )
    # V 0.5: err 2.25; V_clip 0.2: err 3.24 -> clipped is larger: clipfrac 1.
    assert stuck.loss.item() == pytest.approx(1.62) and stuck.clipfrac.item() == 1.0


def test_explained_variance_by_hand() -> None:
    returns = torch.tensor([[1.0, 2.0, 3.0, 50.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    assert explained_variance(returns, returns, mask) == pytest.approx(1.0)
    assert explained_variance(torch.full((1, 4), 2.0), returns, mask) == pytest.approx(0.0)
    # A constant offset leaves the residual R − V = [1, 1, 1] with variance 0: still 1.
    assert explained_variance(returns - 1.0, returns, mask) == pytest.approx(1.0)
    assert math.isnan(explained_variance(returns, torch.ones(1, 4), mask))
