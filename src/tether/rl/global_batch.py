"""An RL step's global batch spread over data-parallel ranks, and the math that keeps N ranks equal to one.

    accelerate launch --multi_gpu --num_processes 2 -m tether rl run --batch-size 16   # 8 prompts a rank

`rl.batch_size` is the GLOBAL number of prompts per step: every rank draws the same global batch and
keeps every W-th prompt (`shard`), so a prompt's k samples stay on one rank and RLOO's leave-one-out
baselines are rank-local and exact. Whatever spans the batch is computed over all ranks, so that
W ranks compute what one rank computes on the same samples:

- token means (PPO's policy and value losses, clipfrac, approx_kl, entropy). A rank's share of the
  global token mean is Σ_rank / N_global · W (`token_share`). DDP averages gradients over the ranks
  (÷ W) and `reduce_metrics` averages metrics, so the average of the shares is Σ_all / N_global: the
  token mean of the whole batch, each token weighing the same wherever it was sampled. A rank-local
  token mean would weigh a token by 1 / (W · N_rank) instead, so the rank with the shorter
  responses would count more. (Per-episode means need nothing: every rank holds as many episodes.)
- whitening (PPO's token advantages, RLOO's sequence advantages): the global batch's mean and
  variance (`global_moments`).
- generations the monitors read (text features, strata, gold): gathered from every rank back into the
  global draw order (`interleave`), so every rank runs the same monitors on the same responses and
  takes the same stop decision (`tether.rl.episodes`).

At world size 1 each function runs the single-process code as it was, operation for operation, so a
one-process run computes exactly the same numbers as before data-parallel support existed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from tether.distributed import BatchSplit, split_batch
from tether.errors import TetherInputError
from tether.rl.advantages import whiten
from tether.rl.losses import TokenMean
from tether.rl.masked import masked_mean, masked_sum, masked_var

if TYPE_CHECKING:
    from accelerate import Accelerator

    from tether.rl.config import RLConfig

T = TypeVar("T")


def _alone(obj: Any) -> list[Any]:
    return [obj]


def _same(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


@dataclass(frozen=True)
class Ranks:
    """The data-parallel ranks of a run, as the RL math needs them. The default is one process."""

    world_size: int = 1
    rank: int = 0
    all_sum: Callable[[torch.Tensor], torch.Tensor] = field(default=_same, compare=False)
    """A tensor summed over every rank, the same result on each (an all-reduce)."""
    all_gather: Callable[[Any], list[Any]] = field(default=_alone, compare=False)
    """One picklable object per rank, in rank order, on every rank."""

    @classmethod
    def of(cls, accelerator: Accelerator) -> Ranks:
        if accelerator.num_processes == 1:
            return cls()

        def all_sum(tensor: torch.Tensor) -> torch.Tensor:
            return accelerator.reduce(tensor, reduction="sum")

        def all_gather(obj: Any) -> list[Any]:
            from accelerate.utils import gather_object

            return list(gather_object([obj]))  # gather_object concatenates lists: one item per rank

        return cls(accelerator.num_processes, accelerator.process_index, all_sum, all_gather)


# --- the global batch and its shards ---------------------------------------------------------------------
def rl_batch_split(cfg: RLConfig, world_size: int) -> BatchSplit:
    """The per-device share of `cfg.batch_size` prompts; an input error naming the numbers when the
    world size does not divide it, or when a device's episodes do not split into `cfg.minibatches`
    (each minibatch is one optimizer step on every rank at once)."""
    split = split_batch(cfg.batch_size, world_size=world_size, what="--batch-size (rl.batch_size)")
    episodes = split.per_device * cfg.samples_per_prompt
    if episodes % cfg.minibatches:
        raise TetherInputError(
            f"--batch-size {cfg.batch_size} over {world_size} processes is {split.per_device} prompts × "
            f"{cfg.samples_per_prompt} samples = {episodes} episodes per device, which do not split into "
            f"--minibatches {cfg.minibatches}; choose a batch size or a number of minibatches that divides"
        )
    return split


def describe_split(cfg: RLConfig, split: BatchSplit) -> str:
    """One line for the start of a run: how a step's prompts and episodes spread over the devices."""
    episodes = split.per_device * cfg.samples_per_prompt
    return (
        f"rl: prompts per step: {split.describe()}; {cfg.samples_per_prompt} samples each, so {episodes} "
        f"episodes per device in {cfg.minibatches} minibatch{'es' if cfg.minibatches > 1 else ''}"
    )


def shard_indices(n: int, ranks: Ranks) -> list[int]:
    """The places in a global draw of `n` prompts that this rank takes: rank, rank + W, rank + 2W…"""
    return list(range(ranks.rank, n, ranks.world_size))


def interleave(shards: Sequence[Sequence[T]], group: int) -> list[T]:
    """Rows gathered from every rank (in rank order) back in the global draw order. Rank r held the
    draw's prompts r, r + W, r + 2W…, each as `group` adjacent rows (its k samples).

    >>> interleave([["a0", "a1", "c0", "c1"], ["b0", "b1", "d0", "d1"]], group=2)
    ['a0', 'a1', 'b0', 'b1', 'c0', 'c1', 'd0', 'd1']
    """
    sizes = {len(rows) for rows in shards}
    if len(sizes) != 1 or next(iter(sizes)) % group:
        raise ValueError(f"every rank must hold the same whole number of {group}-row groups, got {sizes}")
    out: list[T] = []
    for start in range(0, len(shards[0]), group):
        for rows in shards:
            out.extend(rows[start : start + group])
    return out


def group_seed(seed: int, step: int, index: int, key: str) -> int:
    """The seed of one prompt's k samples: the run's seed, the step, the prompt's place in the step's
    global draw and its key. No rank enters it, so any number of ranks draws the same tokens; the
    place tells apart a prompt drawn twice in one step (a pool smaller than the batch)."""
    digest = hashlib.blake2b(f"{seed}\x1f{step}\x1f{index}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """The global torch seed of rank ≥ 1 at a fresh start (or a resume that lacks its RNG state), so
    that its sampling stream is not a copy of rank 0's."""
    digest = hashlib.blake2b(f"{seed}\x1frank\x1f{rank}\x1f{step}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF


# --- reductions over the global batch ---------------------------------------------------------------------
def token_share(x: torch.Tensor, mask: torch.Tensor, tokens: torch.Tensor, world_size: int) -> torch.Tensor:
    """This rank's share of the global token mean: Σ masked x / N_global · W. Averaged over the W
    ranks (as DDP averages gradients), the shares give the token mean of the whole batch."""
    return masked_sum(x, mask) / tokens.clamp(min=1.0) * world_size


def global_token_mean(mask: torch.Tensor, ranks: Ranks) -> TokenMean:
    """The token mean over `mask`'s tokens on every rank: `masked_mean` itself on one process, else
    each rank's `token_share` of the global count (one all-reduce). Call it with the same mask."""
    if ranks.world_size == 1:
        return masked_mean
    tokens = ranks.all_sum(mask.float().sum())
    return partial(token_share, tokens=tokens, world_size=ranks.world_size)


def global_moments(x: torch.Tensor, mask: torch.Tensor, ranks: Ranks) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased variance of the masked entries of `x` over every rank (two all-reduces, two
    passes as `masked_var`); the local `masked_mean` and `masked_var` on one process."""
    if ranks.world_size == 1:
        return masked_mean(x, mask), masked_var(x, mask)
    sums = ranks.all_sum(torch.stack([masked_sum(x, mask), mask.to(x.dtype).sum()]))  # (2,)
    n = sums[1]
    if n.item() == 0:
        raise ValueError("global_moments: the mask selects no entries on any rank")
    mean = sums[0] / n
    var = ranks.all_sum(masked_sum((x - mean) ** 2, mask)) / n
    if n.item() > 1:
        var = var * n / (n - 1)
    return mean, var


def global_whiten(x: torch.Tensor, mask: torch.Tensor, ranks: Ranks, eps: float = 1e-8) -> torch.Tensor:
    """`tether.rl.advantages.whiten` with the global batch's mean and variance. (B, T) -> (B, T)."""
    if ranks.world_size == 1:
        return whiten(x, mask, eps=eps)
    mean, var = global_moments(x, mask, ranks)
    out = (x - mean) * torch.rsqrt(var + eps)  # (B, T)
    return torch.where(mask.bool(), out, torch.zeros_like(out))


def global_standardize(x: torch.Tensor, ranks: Ranks, eps: float = 1e-8) -> torch.Tensor:
    """(x − mean) / (std + eps) over the global batch's entries (unbiased std, as `torch.std`);
    unchanged when the whole batch is a single entry. (B,) -> (B,)."""
    if ranks.world_size == 1:
        return (x - x.mean()) / (x.std() + eps) if x.numel() > 1 else x
    mean, var = global_moments(x, torch.ones_like(x), ranks)
    return (x - mean) / (var.sqrt() + eps)


def global_variance(x: torch.Tensor, mask: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """The unbiased variance of the masked entries over every rank (`masked_var` on one process)."""
    return global_moments(x, mask, ranks)[1]
