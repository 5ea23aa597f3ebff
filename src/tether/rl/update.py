"""Step (7) shared by PPO and RLOO: several epochs of clipped updates over shuffled minibatches.

The policy loss is the clipped surrogate for both algorithms (TRL's RLOOTrainer clips too); PPO adds
the clipped value loss, weighted by `vf_coef`, on the same backward pass. The minibatch order comes
from a generator seeded by (seed, step), so it needs no saved state to resume exactly.

With N data-parallel ranks each optimizer step is one minibatch on every rank at once: rank r's
1/`minibatches` of its own episodes, so a global minibatch has the same size as on one process. The
losses are token means over the global minibatch (`tether.rl.global_batch.global_token_mean`), so a
step's gradient is the one a single process computes on the same rows. With one minibatch per pass
(the rows of every optimizer step are the whole batch) W ranks give one rank's update to float
rounding; with several, each rank shuffles its own episodes into minibatches, so a global minibatch
holds other rows than one process would pick: the same estimator on a different split.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from accelerate import Accelerator

from tether.rl.config import RLConfig
from tether.rl.experience import Experience
from tether.rl.global_batch import Ranks, global_token_mean
from tether.rl.logprobs import token_logprobs
from tether.rl.losses import clipped_value_loss, ppo_policy_loss
from tether.rl.models import PolicyAndValue

UPDATE_KEYS = (
    "policy/clipfrac",
    "policy/approx_kl",
    "losses/policy_loss",
    "losses/value_loss",
    "val/clipfrac",
    "losses/grad_norm",
)


@dataclass(frozen=True)
class Targets:
    """What the update regresses on: per-token advantages and (PPO) critic returns."""

    advantages: torch.Tensor
    """(B, R), 0 on padding."""
    returns: torch.Tensor | None
    """(B, R) GAE returns for the critic, None without one."""


def minibatch_order(n: int, minibatch_size: int, seed: int, step: int, epoch: int) -> list[torch.Tensor]:
    """A seeded shuffle of range(n) split into minibatches."""
    gen = torch.Generator().manual_seed(((seed * 1_000_003 + step) * 1_009 + epoch) & 0x7FFF_FFFF_FFFF)
    return list(torch.randperm(n, generator=gen).split(minibatch_size))


def ppo_update(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    exp: Experience,
    targets: Targets,
    cfg: RLConfig,
    *,
    accelerator: Accelerator,
    step: int,
) -> dict[str, float]:
    """`cfg.ppo_epochs` passes of clipped updates; returns the mean of UPDATE_KEYS over minibatches."""
    model.train()
    n = exp.batch.sequences.shape[0]
    rows: list[torch.Tensor] = []
    for epoch in range(cfg.ppo_epochs):
        # This process's share of a minibatch: data-parallel processes each take 1/num_processes of it.
        for idx in minibatch_order(n, max(1, n // cfg.minibatches), cfg.seed, step, epoch):
            idx = idx.to(exp.batch.sequences.device)
            rows.append(minibatch_step(model, optimizer, exp, targets, idx, cfg, accelerator))
    model.eval()
    means = torch.stack(rows).mean(dim=0).tolist()  # (k, 6) -> (6,)
    return dict(zip(UPDATE_KEYS, means, strict=True))


def minibatch_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    exp: Experience,
    targets: Targets,
    idx: torch.Tensor,
    cfg: RLConfig,
    accelerator: Accelerator,
) -> torch.Tensor:
    """One optimizer step on the rows `idx`; returns UPDATE_KEYS as a (6,) tensor."""
    mb = exp.batch.select(idx)
    # forward: policy logits and critic values on the minibatch
    logits, values = model(mb)  # (b, R, V), (b, R) | None
    logprobs = token_logprobs(logits / cfg.temperature, mb.response_ids)  # (b, R)
    return optimizer_step(model, optimizer, logprobs, values, exp, targets, idx, cfg, accelerator)


def single_pass_update(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    exp: Experience,
    logprobs: torch.Tensor,
    targets: Targets,
    cfg: RLConfig,
    *,
    accelerator: Accelerator,
) -> dict[str, float]:
    """The update when it is one gradient step on the whole batch (`cfg.single_pass`), from the
    policy's log-probabilities (B, R) that `collect_experience_with_graph` kept the graph of."""
    rows = torch.arange(logprobs.shape[0], device=logprobs.device)
    out = optimizer_step(model, optimizer, logprobs, None, exp, targets, rows, cfg, accelerator)
    model.eval()
    return dict(zip(UPDATE_KEYS, out.tolist(), strict=True))


def optimizer_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    logprobs: torch.Tensor,
    values: torch.Tensor | None,
    exp: Experience,
    targets: Targets,
    idx: torch.Tensor,
    cfg: RLConfig,
    accelerator: Accelerator,
) -> torch.Tensor:
    """Losses on the rows `idx` from their current log-probabilities (b, R) and values, then backward,
    gradient clipping and one optimizer step; returns UPDATE_KEYS as a (6,) tensor."""
    mask = exp.mask[idx]  # (b, R)
    # the token mean of the GLOBAL minibatch: with N ranks each loss is this rank's share of it
    token_mean = global_token_mean(mask, Ranks.of(accelerator))
    pg = ppo_policy_loss(
        logprobs, exp.logprobs[idx], targets.advantages[idx], mask, cfg.clip_eps, token_mean=token_mean
    )
    loss = pg.loss
    zero = torch.zeros((), device=loss.device)
    value_loss, value_clipfrac = zero, zero
    if values is not None and targets.returns is not None and exp.values is not None:
        vf = clipped_value_loss(
            values, exp.values[idx], targets.returns[idx], mask, cfg.value_clip, token_mean=token_mean
        )
        value_loss, value_clipfrac = vf.loss, vf.clipfrac
        loss = loss + cfg.vf_coef * value_loss
    # backward, clip, step
    optimizer.zero_grad(set_to_none=True)
    accelerator.backward(loss)
    grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip or float("inf"))
    optimizer.step()
    return (
        torch.stack(
            [
                pg.clipfrac,
                pg.approx_kl,
                pg.loss.detach(),
                value_loss.detach(),
                value_clipfrac,
                torch.as_tensor(grad_norm, dtype=torch.float32, device=loss.device),
            ]
        )
        .float()
        .cpu()
    )


def unwrap(model: torch.nn.Module, accelerator: Accelerator) -> PolicyAndValue:
    inner = accelerator.unwrap_model(model)
    assert isinstance(inner, PolicyAndValue)
    return inner
