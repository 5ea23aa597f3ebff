"""Reward shaping, GAE, whitening and group baselines against values worked out by hand."""

from __future__ import annotations

import pytest
import torch

from tether.rl.advantages import gae, group_normalized_advantages, rloo_advantages, whiten
from tether.rl.masked import masked_mean, masked_var
from tether.rl.rewards import clip_scores, last_token_index, normalize_scores, shaped_rewards


def test_shaped_rewards_put_the_score_on_the_last_response_token() -> None:
    kl = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5], [4.0, 4.0, 4.0]])  # (3, 3)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [0, 0, 0]])
    rewards = shaped_rewards(torch.tensor([10.0, -1.0, 5.0]), kl, mask, beta=0.1)
    expected = [[-0.1, -0.2, -0.3 + 10.0], [-0.05, -0.05 - 1.0, 0.0], [0.0, 0.0, 0.0]]
    for row, want in zip(rewards.tolist(), expected, strict=True):
        assert row == pytest.approx(want)
    assert last_token_index(mask).tolist() == [2, 1, -1]


def test_score_normalization_and_clipping() -> None:
    scores = torch.tensor([-10.0, 1.0, 3.0])
    assert normalize_scores(scores, mean=1.0, std=2.0).tolist() == [-5.5, 0.0, 1.0]
    assert clip_scores(scores, 2.0).tolist() == [-2.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="std must be > 0"):
        normalize_scores(scores, 0.0, 0.0)


def test_gae_with_gamma_and_lambda_one_is_reward_to_go_minus_value() -> None:
    rewards = torch.tensor([[1.0, 2.0, 3.0]])
    values = torch.tensor([[0.5, 1.0, 1.5]])
    mask = torch.ones(1, 3)
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    # Reward-to-go: [6, 5, 3].
    assert adv[0].tolist() == pytest.approx([5.5, 4.0, 1.5])
    assert ret[0].tolist() == pytest.approx([6.0, 5.0, 3.0])


def test_gae_lambda_zero_is_one_step_td_and_padding_is_terminal() -> None:
    rewards = torch.tensor([[1.0, 2.0, 99.0]])
    values = torch.tensor([[0.5, 1.0, 42.0]])  # the padded value must not bootstrap
    mask = torch.tensor([[1, 1, 0]])
    adv, ret = gae(rewards, values, mask, gamma=0.9, lam=0.0)
    # δ0 = 1 + 0.9·1.0 − 0.5 = 1.4; δ1 = 2 + 0 − 1.0 = 1.0 (terminal); padding 0.
    assert adv[0].tolist() == pytest.approx([1.4, 1.0, 0.0])
    assert ret[0].tolist() == pytest.approx([1.9, 2.0, 0.0])


def test_gae_general_case_by_hand() -> None:
    rewards = torch.tensor([[0.0, 1.0]])
    values = torch.tensor([[1.0, 2.0]])
    adv, _ = gae(rewards, values, torch.ones(1, 2), gamma=0.5, lam=0.5)
    # δ1 = 1 − 2 = −1; A1 = −1. δ0 = 0 + 0.5·2 − 1 = 0; A0 = 0 + 0.25·(−1) = −0.25.
    assert adv[0].tolist() == pytest.approx([-0.25, -1.0])


def test_nan_in_padding_stays_out() -> None:
    nan = float("nan")
    mask = torch.tensor([[1, 1, 0]])
    rewards = shaped_rewards(torch.tensor([1.0]), torch.tensor([[0.5, 0.5, nan]]), mask, beta=1.0)
    assert rewards[0].tolist() == [-0.5, 0.5, 0.0]
    adv, ret = gae(rewards, torch.tensor([[0.0, 0.0, nan]]), mask, gamma=1.0, lam=1.0)
    assert adv[0].tolist() == [0.0, 0.5, 0.0] and ret[0].tolist() == [0.0, 0.5, 0.0]
    assert whiten(torch.tensor([[1.0, 3.0, nan]]), mask)[0, 2].item() == 0.0
    assert masked_mean(torch.tensor([[1.0, 3.0, nan]]), mask).item() == 2.0


def test_whiten_by_hand() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    # Masked mean 2, unbiased variance 1.
    assert masked_mean(x, mask).item() == 2.0 and masked_var(x, mask).item() == pytest.approx(1.0)
    assert whiten(x, mask)[0].tolist() == pytest.approx([-1.0, 0.0, 1.0, 0.0], abs=1e-6)
    assert whiten(x, mask, shift_mean=False)[0].tolist() == pytest.approx([1.0, 2.0, 3.0, 0.0], abs=1e-6)
    with pytest.raises(ValueError, match="no entries"):
        masked_var(x, torch.zeros(1, 4))


def test_rloo_by_hand() -> None:
    # Two prompts, k = 2: the baseline is the other sample's score.
    assert rloo_advantages(torch.tensor([1.0, 3.0, 5.0, 5.0]), 2).tolist() == [-2.0, 2.0, 0.0, 0.0]
    # k = 3, scores 0, 3, 6: baselines 4.5, 3, 1.5.
    assert rloo_advantages(torch.tensor([0.0, 3.0, 6.0]), 3).tolist() == [-4.5, 0.0, 4.5]


def test_group_normalized_by_hand() -> None:
    # Group [0, 3, 6]: mean 3, unbiased std 3.
    adv = group_normalized_advantages(torch.tensor([0.0, 3.0, 6.0, 2.0, 2.0, 2.0]), 3)
    assert adv.tolist() == pytest.approx([-1.0, 0.0, 1.0, 0.0, 0.0, 0.0], abs=1e-4)
    unscaled = group_normalized_advantages(torch.tensor([0.0, 3.0, 6.0]), 3, scale=False)
    assert unscaled.tolist() == [-3.0, 0.0, 3.0]


@pytest.mark.parametrize("n, k", [(5, 2), (4, 1)])
def test_group_baselines_reject_bad_groups(n: int, k: int) -> None:
    with pytest.raises(ValueError, match="group_size"):
        rloo_advantages(torch.zeros(n), k)
