"""The reward-model training loop, as numbered steps over packed pairs (see `tether.reward.train`).

Each optimizer step takes one global batch of `batch_size` pairs, the same whatever the number of
processes: every rank packs its share (`LengthBucketSampler`), in `gradient_accumulation_steps`
micro-batches of 2 x per-device sequences. Losses are means over equal shares and DDP averages the
gradients, so N ranks take the step one rank would (up to float reduction order). Metrics come back
from the device every `log_every` steps in one transfer and are written one row per optimizer step.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from tether.distributed import BatchSplit
from tether.reward.config import RewardTrainConfig, batch_split, lr_factor, schedule
from tether.reward.data import EncodedPair, LengthBucketSampler, PairCollator
from tether.reward.loss import bradley_terry_loss, decided_accuracy
from tether.reward.model import rewards, trainable_parameters
from tether.reward.shared_prefix import (
    SharedPrefixCollator,
    common_prefix,
    implementation_of,
    score_head,
    shared_rewards,
    works_for,
)

StepCallback = Callable[[int, int, dict[str, float]], None]
"""on_step(step, total_steps, metrics): called for every optimizer step, on the main process, in bursts of
`log_every` steps (when the metrics come back from the device)."""

Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class FitOutcome:
    """What the loop hands back: the model, its step count, final train metrics and throughput."""

    model: torch.nn.Module
    """The trained model, still wrapped by accelerate (unwrap before saving)."""
    steps: int
    """Optimizer steps (global batches), not micro-batches."""
    metrics: dict[str, float]
    seconds: float
    pairs_per_second: float
    """Pairs over all processes per second."""
    batching: Batching


def fit(
    model: torch.nn.Module,
    pairs: Sequence[EncodedPair],
    cfg: RewardTrainConfig,
    *,
    pad_id: int,
    accelerator: Accelerator,
    metrics_file: Path | None = None,
    on_step: StepCallback | None = None,
) -> FitOutcome:
    """Train `model` on `pairs` with the Bradley–Terry loss; one metrics row per step to `metrics_file`.

    Metrics stay on the device and are read back every `cfg.log_every` steps in one transfer: a read
    per step would make the host wait for the accelerator at every step instead of queueing ahead."""
    split = batch_split(cfg, world_size=accelerator.num_processes)
    model, optimizer = prepare(model, cfg, split, accelerator)
    score, batching, lengths = choose_batching(model, pairs, cfg, pad_id=pad_id, accelerator=accelerator)
    sampler = LengthBucketSampler(
        lengths,
        batch_size=cfg.batch_size,
        bucket_size=cfg.bucket_size,
        seed=cfg.seed,
        accumulation=split.accumulation,
        world_size=split.world_size,
        rank=accelerator.process_index,
    )
    # Not passed to accelerator.prepare: the sampler yields this rank's share already, and accelerate's
    # sharding would split it again (and pad a short last batch with repeated pairs).
    loader: DataLoader[EncodedPair] = DataLoader(
        list(pairs),  # type: ignore[arg-type]  # a list is a map-style dataset; the stubs say Dataset
        batch_sampler=sampler,
        collate_fn=SharedPrefixCollator(pad_id) if batching.shared else PairCollator(pad_id),
        pin_memory=accelerator.device.type == "cuda",
    )
    plan = schedule(cfg, sampler.steps_per_epoch)
    sink = metrics_file.open("a", encoding="utf-8") if metrics_file else None
    model.train()
    step, seen = 0, 0
    pending: list[tuple[dict[str, float], torch.Tensor]] = []
    rows: list[dict[str, float]] = []
    start = time.perf_counter()
    with sink or nullcontext():
        for epoch in range(cfg.epochs):
            for micro_batches in optimizer_steps(loader, split.accumulation, accelerator.device):
                lr = cfg.lr * lr_factor(step, plan)
                values = train_step(
                    model, micro_batches, optimizer, cfg, lr=lr, accelerator=accelerator, score=score
                )
                pending.append(({"step": step, "epoch": epoch, "train/lr": lr}, values))
                # Equal shares on every rank: this rank's pairs times the world is the global batch.
                seen += sum(b["margin"].shape[0] for b in micro_batches) * split.world_size
                step += 1
                if len(pending) == cfg.log_every or step == plan.total_steps:
                    rows += _log(read_back(pending, accelerator), sink, on_step, plan.total_steps)
                    pending = []
        rows += _log(read_back(pending, accelerator), sink, on_step, plan.total_steps)
    seconds = time.perf_counter() - start
    model.eval()
    last = [r for r in rows if r["epoch"] == cfg.epochs - 1]
    final = {key: _finite_mean([r[key] for r in last]) for key in ("train/loss", "train/accuracy")}
    return FitOutcome(model, step, final, seconds, seen / seconds if seconds else 0.0, batching)


def _finite_mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def prepare(
    model: torch.nn.Module, cfg: RewardTrainConfig, split: BatchSplit, accelerator: Accelerator
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """AdamW over the trainable weights; model and optimizer wrapped by accelerate (DDP, FSDP, ...)."""
    fused = accelerator.device.type == "cuda"  # one kernel for the whole update
    optimizer = torch.optim.AdamW(
        trainable_parameters(model), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused or None
    )
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is not None:
        # accelerate reads DeepSpeed's micro-batch from a prepared DataLoader; ours is not prepared.
        plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = split.per_device
    prepared_model, prepared_optimizer = accelerator.prepare(model, optimizer)
    return prepared_model, prepared_optimizer


@dataclass(frozen=True)
class Batching:
    """How the pairs were batched, and why."""

    shared: bool
    """One shared-prefix row per pair (`tether.reward.shared_prefix`), else two full sequences."""
    note: str
    """What the check found, or why the plain batch was used."""
    slots_per_pair: float
    """Mean token slots a pair takes before padding: P + C + R shared, else both full lengths."""
    plain_slots_per_pair: float
    """The same for two full sequences, for comparison."""

    def describe(self) -> str:
        if not self.shared:
            return f"pairs batched as two full sequences ({self.note})"
        return (
            f"pairs batched with their common prefix read once: {self.slots_per_pair:.0f} token slots per "
            f"pair instead of {self.plain_slots_per_pair:.0f} ({self.note})"
        )


CHECK_PAIRS = 8
"""Pairs the shared-prefix check reads both ways: those with the longest common prefixes."""


def choose_batching(
    model: torch.nn.Module,
    pairs: Sequence[EncodedPair],
    cfg: RewardTrainConfig,
    *,
    pad_id: int,
    accelerator: Accelerator,
) -> tuple[Callable[[torch.nn.Module, Batch], torch.Tensor], Batching, list[int]]:
    """The reward function of a micro-batch, the batching it reads and each pair's length in that
    batching (what the sampler buckets by), decided the same on every rank: shared prefixes where
    `cfg.shared_prefix` asks and the model reads them exactly (`works_for`)."""
    full = [len(p.chosen_ids) + len(p.rejected_ids) for p in pairs]
    plain = sum(full) / max(1, len(pairs))
    longer = [p.length for p in pairs]
    if not cfg.shared_prefix:
        return rewards, Batching(False, "shared_prefix is off", plain, plain), longer
    prefixes = [common_prefix(p.chosen_ids, p.rejected_ids) for p in pairs]  # once: O(tokens)
    order = sorted(range(len(pairs)), key=lambda i: -prefixes[i])
    implementation = implementation_of(accelerator.unwrap_model(model))
    ok, note = works_for(
        model, [pairs[i] for i in order[:CHECK_PAIRS]], pad_id=pad_id, implementation=implementation
    )
    # Every rank must batch alike: shared only where all of them found it exact.
    votes = accelerator.gather(torch.tensor([float(ok)], device=accelerator.device))
    if not bool(votes.min() > 0):
        why = note if not ok else "another process's check failed"
        return rewards, Batching(False, why, plain, plain), longer
    head = score_head(model)
    assert head is not None  # works_for found it

    def score(m: torch.nn.Module, batch: Batch) -> torch.Tensor:
        return shared_rewards(m, batch, head=head, implementation=implementation)

    shared = [n - k for n, k in zip(full, prefixes, strict=True)]  # P + C + R = both sides − P
    return score, Batching(True, note, sum(shared) / max(1, len(pairs)), plain), shared


def optimizer_steps(
    loader: Iterable[Batch], accumulation: int, device: torch.device
) -> Iterator[list[Batch]]:
    """The loader's micro-batches on `device`, grouped `accumulation` to an optimizer step."""
    group: list[Batch] = []
    for batch in loader:
        # Pinned on CUDA, so the copy need not wait and the host can queue the next step.
        group.append({key: value.to(device, non_blocking=True) for key, value in batch.items()})
        if len(group) == accumulation:
            yield group
            group = []


METRICS = ("train/loss", "train/accuracy", "train/reward_gap", "train/reward_mean", "train/grad_norm")
"""What `train_step` measures, in the order of its tensor."""


def train_step(
    model: torch.nn.Module,
    micro_batches: Sequence[Batch],
    optimizer: torch.optim.Optimizer,
    cfg: RewardTrainConfig,
    *,
    lr: float,
    accelerator: Accelerator,
    score: Callable[[torch.nn.Module, Batch], torch.Tensor] = rewards,
) -> torch.Tensor:
    """One optimizer step on this rank's micro-batches of a global batch; METRICS as a (5,) device tensor.

    Under `accelerator.accumulate`, accelerate divides each loss by the accumulation steps and syncs the
    gradients across ranks on the last micro-batch only; equal micro-batches make the sum their mean."""
    measured = []
    for batch in micro_batches:
        with accelerator.accumulate(model):
            # 1. forward: chosen and rejected together (`score`: plain or shared-prefix rows)
            r_chosen, r_rejected = score(model, batch).chunk(2)  # (2b,) -> (b,), (b,); b per device
            # 2. loss
            margin = batch["margin"] if cfg.margin else None
            tie = batch.get("tie")  # (b,) bool: kept ties train toward equal rewards
            loss = bradley_terry_loss(r_chosen, r_rejected, margin, cfg.center_coef, tie)
            # 3. backward (gradients add up until the step)
            accelerator.backward(loss)
        with torch.no_grad():
            gap, both = r_chosen - r_rejected, torch.cat([r_chosen, r_rejected])
            accuracy = decided_accuracy(r_chosen, r_rejected, tie)
            measured.append(torch.stack([loss.detach(), accuracy, gap.mean(), both.mean()]))
    # 4. step, on the whole global batch's gradient
    if not accelerator.sync_gradients:  # an invariant: optimizer_steps groups as accelerate counts
        raise RuntimeError("micro-batches out of step with accelerate's gradient accumulation count")
    grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip or float("inf"))
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    # 5. metrics, left on the device: means over the micro-batches, then the gradient's norm
    with torch.no_grad():
        # DeepSpeed clips inside its own step and has no norm to give before its first one.
        norm = torch.as_tensor(
            float("nan") if grad_norm is None else grad_norm, dtype=loss.dtype, device=loss.device
        ).reshape(1)
        # nanmean: a micro-batch of ties alone has no accuracy (`decided_accuracy`)
        return torch.cat([torch.stack(measured).nanmean(dim=0), norm])


def read_back(
    pending: Sequence[tuple[dict[str, float], torch.Tensor]], accelerator: Accelerator
) -> list[dict[str, float]]:
    """Metric rows for the pending steps, averaged over processes, in one transfer."""
    if not pending:
        return []
    table = accelerator.reduce(torch.stack([values for _, values in pending]), reduction="mean")  # (k, 5)
    return [
        {**keys, **dict(zip(METRICS, values, strict=True))}
        for (keys, _), values in zip(pending, table.tolist(), strict=True)
    ]


def _log(
    rows: list[dict[str, float]], sink: TextIO | None, on_step: StepCallback | None, total: int
) -> list[dict[str, float]]:
    for row in rows:
        if sink is not None:
            sink.write(json.dumps(row) + "\n")
        if on_step is not None:
            on_step(int(row["step"]), total, row)
    return rows
