"""The math that keeps N data-parallel ranks equal to one (`tether.rl.global_batch`), without a process
group: ranks are simulated by threads whose all-reduce sums every thread's tensor, and each function
run on two shards of a ragged batch must give what it gives on the whole batch."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import torch

from tether.errors import TetherInputError
from tether.rl.advantages import whiten
from tether.rl.checkpoint import TrainerState, rank_rng_entries, rank_rng_state
from tether.rl.config import RLConfig
from tether.rl.global_batch import (
    Ranks,
    global_moments,
    global_standardize,
    global_token_mean,
    global_whiten,
    group_seed,
    interleave,
    rl_batch_split,
    shard_indices,
    token_share,
)
from tether.rl.masked import masked_mean, masked_var
from tether.rl.prompts import repeat_each
from tether.rl.rollout import RolloutBatch, concat_rollouts, position_ids_from_mask

R = TypeVar("R")
# A ragged batch: 4 responses of 3, 1, 2 and 4 tokens; the halves hold 4 and 6 of its 10 tokens.
X = torch.tensor([[1.0, 2.0, 3.0, 9.0], [4.0, 9.0, 9.0, 9.0], [5.0, 6.0, 9.0, 9.0], [7.0, 8.0, 0.0, 2.0]])
MASK = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
HALVES = [slice(0, 2), slice(2, 4)]


class ThreadRanks:
    """`world` ranks as threads of this process; all_sum and all_gather meet at a barrier."""

    def __init__(self, world: int) -> None:
        self.world = world
        self.barrier = threading.Barrier(world)
        self.slots: list[Any] = [None] * world

    def _exchange(self, rank: int, value: Any) -> list[Any]:
        self.slots[rank] = value
        self.barrier.wait()
        seen = list(self.slots)
        self.barrier.wait()  # nobody overwrites a slot before every rank has read them all
        return seen

    def ranks(self, rank: int) -> Ranks:
        def all_sum(tensor: torch.Tensor) -> torch.Tensor:
            parts = self._exchange(rank, tensor.detach().clone())
            return torch.stack(parts).sum(dim=0)

        return Ranks(self.world, rank, all_sum, lambda obj: self._exchange(rank, obj))

    def run(self, fn: Callable[[int, Ranks], R]) -> list[R]:
        out: list[Any] = [None] * self.world
        errors: list[BaseException] = []

        def body(rank: int) -> None:
            try:
                out[rank] = fn(rank, self.ranks(rank))
            except BaseException as exc:  # re-raised below, in the test's thread
                errors.append(exc)
                self.barrier.abort()

        threads = [threading.Thread(target=body, args=(r,)) for r in range(self.world)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        if errors:
            raise errors[0]
        return out


def test_the_mean_of_the_ranks_token_shares_is_the_global_token_mean() -> None:
    # whole batch: (1+2+3 + 4 + 5+6 + 7+8+0+2) / 10 = 3.8; the halves' own means are 2.5 and 4.67
    assert masked_mean(X, MASK).item() == pytest.approx(3.8)
    tokens = MASK.float().sum()  # what the all-reduce of the halves' counts gives: 4 + 6
    shares = [token_share(X[h], MASK[h], tokens, world_size=2) for h in HALVES]
    assert [s.item() for s in shares] == pytest.approx([10 / 10 * 2, 28 / 10 * 2])
    assert (sum(shares) / 2).item() == pytest.approx(3.8)  # DDP's average of the two ranks
    per_rank_means = [masked_mean(X[h], MASK[h]).item() for h in HALVES]
    assert sum(per_rank_means) / 2 == pytest.approx((2.5 + 28 / 6) / 2)  # what a rank-local mean gives


def test_the_averaged_gradient_of_the_shares_is_the_whole_batch_gradient() -> None:
    weight = torch.tensor(0.5, requires_grad=True)
    (whole,) = torch.autograd.grad(masked_mean(weight * X**2, MASK), weight)

    def rank_grad(rank: int, ranks: Ranks) -> torch.Tensor:
        w = weight.detach().clone().requires_grad_(True)
        mask = MASK[HALVES[rank]]
        loss = global_token_mean(mask, ranks)(w * X[HALVES[rank]] ** 2, mask)
        (grad,) = torch.autograd.grad(loss, w)
        return grad

    grads = ThreadRanks(2).run(rank_grad)
    assert (sum(grads) / 2).item() == pytest.approx(whole.item(), rel=1e-6)  # DDP averages gradients


def test_on_one_process_every_reduction_is_the_single_process_code() -> None:
    alone = Ranks()
    assert global_token_mean(MASK, alone) is masked_mean
    mean, var = global_moments(X, MASK, alone)
    assert torch.equal(mean, masked_mean(X, MASK)) and torch.equal(var, masked_var(X, MASK))
    assert torch.equal(global_whiten(X, MASK, alone), whiten(X, MASK))
    seq = torch.tensor([1.0, 2.0, 6.0])
    assert torch.equal(global_standardize(seq, alone), (seq - seq.mean()) / (seq.std() + 1e-8))
    assert torch.equal(global_standardize(torch.tensor([3.0]), alone), torch.tensor([3.0]))


def test_whitening_over_two_shards_is_whitening_over_the_batch() -> None:
    whole = whiten(X, MASK)
    parts = ThreadRanks(2).run(lambda r, ranks: global_whiten(X[HALVES[r]], MASK[HALVES[r]], ranks))
    assert torch.allclose(torch.cat(parts), whole, atol=1e-6)
    moments = ThreadRanks(2).run(lambda r, ranks: global_moments(X[HALVES[r]], MASK[HALVES[r]], ranks))
    assert all(m.item() == pytest.approx(3.8) for m, _ in moments)
    assert all(v.item() == pytest.approx(masked_var(X, MASK).item()) for _, v in moments)


def test_sequence_standardizing_over_two_shards_is_standardizing_the_batch() -> None:
    seq = torch.tensor([1.0, 2.0, 6.0, -1.0, 0.5, 3.0])
    whole = (seq - seq.mean()) / (seq.std() + 1e-8)
    parts = ThreadRanks(2).run(lambda r, ranks: global_standardize(seq[3 * r : 3 * r + 3], ranks))
    assert torch.allclose(torch.cat(parts), whole, atol=1e-6)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_gathered_shards_interleave_back_into_the_global_draw_order(world: int) -> None:
    drawn, k = [f"p{i}" for i in range(6)], 2
    shards = [
        repeat_each([drawn[i] for i in shard_indices(len(drawn), Ranks(world, r))], k) for r in range(world)
    ]
    assert interleave(shards, k) == repeat_each(drawn, k)
    with pytest.raises(ValueError, match="same whole number"):
        interleave([["a", "a"], ["b"]], 2)


def test_a_group_seed_depends_on_the_run_step_place_and_prompt_but_not_on_the_rank() -> None:
    seed = group_seed(0, 3, 5, "prompt-7")
    assert seed == group_seed(0, 3, 5, "prompt-7") and 0 <= seed < 2**63
    others = {
        group_seed(1, 3, 5, "prompt-7"),
        group_seed(0, 4, 5, "prompt-7"),
        group_seed(0, 3, 6, "prompt-7"),
    }
    assert seed not in others and len(others) == 3


def test_a_batch_the_world_size_does_not_divide_is_refused_naming_both_numbers() -> None:
    cfg = RLConfig(batch_size=6, samples_per_prompt=2, minibatches=4)  # 12 episodes: 3 per minibatch
    assert rl_batch_split(cfg, 1).per_device == 6
    assert rl_batch_split(RLConfig(batch_size=6), 2).per_device == 3
    with pytest.raises(TetherInputError, match=r"--batch-size \(rl.batch_size\) 6 .* over 4 processes"):
        rl_batch_split(RLConfig(batch_size=6), 4)
    with pytest.raises(
        TetherInputError, match=r"3 prompts × 2 samples = 6 episodes per device.*--minibatches 4"
    ):
        rl_batch_split(cfg, 2)


def _rollout(prompt: list[int], response: list[int], pad: int = 0) -> RolloutBatch:
    seq = torch.tensor([prompt + response])
    attention = torch.ones_like(seq)
    resp = torch.ones(1, len(response), dtype=torch.long)
    return RolloutBatch(
        seq, attention, position_ids_from_mask(attention), resp, len(prompt), ["r"], torch.tensor([True])
    )


def test_groups_of_other_widths_join_one_batch_left_and_right_padded() -> None:
    joined = concat_rollouts([_rollout([5, 6], [7]), _rollout([8], [9, 10, 11])], pad=0)
    assert joined.prompt_width == 2 and joined.sequences.tolist() == [[5, 6, 7, 0, 0], [0, 8, 9, 10, 11]]
    assert joined.attention_mask.tolist() == [[1, 1, 1, 0, 0], [0, 1, 1, 1, 1]]
    assert joined.response_mask.tolist() == [[1, 0, 0], [1, 1, 1]]
    assert joined.position_ids.tolist() == [[0, 1, 2, 2, 2], [0, 0, 1, 2, 3]]  # a token keeps its position
    assert joined.response_ids.tolist() == [[7, 0, 0], [9, 10, 11]]


def test_each_ranks_rng_state_round_trips_through_the_checkpoint_entries() -> None:
    own = ({"rng.torch": torch.tensor([0], dtype=torch.uint8)}, {"numpy": "rank 0"})
    rank1 = ({"rng.torch": torch.tensor([1], dtype=torch.uint8)}, {"numpy": "rank 1"})
    tensors, by_rank = rank_rng_entries([rank1])
    assert set(tensors) == {"rank1.rng.torch"} and by_rank == {"1": {"numpy": "rank 1"}}
    trainer = TrainerState({**own[0], **tensors}, {"rng": own[1], "rng_ranks": by_rank})
    restored = rank_rng_state(trainer, 1)
    assert (
        restored is not None
        and restored[1] == rank1[1]
        and torch.equal(restored[0]["rng.torch"], rank1[0]["rng.torch"])
    )
    zero = rank_rng_state(trainer, 0)
    assert zero is not None and zero[1] == own[1]
    assert rank_rng_state(trainer, 2) is None  # written by two processes, resumed on three
