"""The reward-model training loop, as numbered steps over packed pairs (see `tether.reward.train`).

Each step packs B pairs into one forward pass of 2B sequences; metrics come back from the device
every `log_every` steps in one transfer and are written one row per step to metrics.jsonl.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from tether.reward.config import RewardTrainConfig, lr_factor, schedule
from tether.reward.data import EncodedPair, LengthBucketSampler, PairCollator
from tether.reward.loss import bradley_terry_loss, pair_accuracy
from tether.reward.model import rewards, trainable_parameters

StepCallback = Callable[[int, int, dict[str, float]], None]
"""on_step(step, total_steps, metrics): called for every optimizer step, on the main process, in bursts of
`log_every` steps (when the metrics come back from the device)."""


@dataclass(frozen=True)
class FitOutcome:
    """What the loop hands back: the model, its step count, final train metrics and throughput."""

    model: torch.nn.Module
    """The trained model, still wrapped by accelerate (unwrap before saving)."""
    steps: int
    metrics: dict[str, float]
    seconds: float
    pairs_per_second: float


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
    sampler = LengthBucketSampler(
        [p.length for p in pairs], batch_size=cfg.batch_size, bucket_size=cfg.bucket_size, seed=cfg.seed
    )
    # A list is a map-style dataset; torch's stubs only say Dataset.
    loader: DataLoader[EncodedPair] = DataLoader(
        list(pairs),  # type: ignore[arg-type]
        batch_sampler=sampler,
        collate_fn=PairCollator(pad_id),
        pin_memory=accelerator.device.type == "cuda",
    )
    fused = accelerator.device.type == "cuda"  # one kernel for the whole update
    optimizer = torch.optim.AdamW(
        trainable_parameters(model), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused or None
    )
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    plan = schedule(cfg, len(loader))
    sink = metrics_file.open("a", encoding="utf-8") if metrics_file else None
    model.train()
    step, seen = 0, 0
    pending: list[tuple[dict[str, float], torch.Tensor]] = []
    rows: list[dict[str, float]] = []
    start = time.perf_counter()
    with sink or nullcontext():
        for epoch in range(cfg.epochs):
            for batch in loader:
                lr = cfg.lr * lr_factor(step, plan)
                values = train_step(model, batch, optimizer, cfg, lr=lr, accelerator=accelerator)
                pending.append(({"step": step, "epoch": epoch, "train/lr": lr}, values))
                seen += batch["margin"].shape[0] * accelerator.num_processes
                step += 1
                if len(pending) == cfg.log_every or step == plan.total_steps:
                    rows += _log(read_back(pending, accelerator), sink, on_step, plan.total_steps)
                    pending = []
        rows += _log(read_back(pending, accelerator), sink, on_step, plan.total_steps)
    seconds = time.perf_counter() - start
    model.eval()
    last = [r for r in rows if r["epoch"] == cfg.epochs - 1]
    final = {key: sum(r[key] for r in last) / len(last) for key in ("train/loss", "train/accuracy")}
    return FitOutcome(model, step, final, seconds, seen / seconds if seconds else 0.0)


METRICS = ("train/loss", "train/accuracy", "train/reward_gap", "train/reward_mean", "train/grad_norm")
"""What `train_step` measures, in the order of its tensor."""


def train_step(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    cfg: RewardTrainConfig,
    *,
    lr: float,
    accelerator: Accelerator,
) -> torch.Tensor:
    """One optimizer step on a packed batch; returns METRICS as a (5,) tensor, still on the device."""
    # 1. forward: chosen and rejected together
    r_chosen, r_rejected = rewards(model, batch).chunk(2)  # (2B,) -> (B,), (B,)
    # 2. loss
    margin = batch["margin"] if cfg.margin else None
    loss = bradley_terry_loss(r_chosen, r_rejected, margin, cfg.center_coef)
    # 3. backward
    optimizer.zero_grad(set_to_none=True)
    accelerator.backward(loss)
    grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip or float("inf"))
    # 4. step
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    # 5. metrics, left on the device
    with torch.no_grad():
        return torch.stack(
            [
                loss.detach(),
                pair_accuracy(r_chosen, r_rejected),
                (r_chosen - r_rejected).mean(),
                torch.cat([r_chosen, r_rejected]).mean(),
                torch.as_tensor(grad_norm, dtype=loss.dtype, device=loss.device),
            ]
        )


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
