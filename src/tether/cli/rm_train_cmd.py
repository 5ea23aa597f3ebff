"""`tether rm train`: a Bradley–Terry reward model on the latest export, from the current SFT policy.

    accelerate launch --multi_gpu --num_processes 2 -m tether rm train --batch-size 32   # 2 ranks

`--batch-size` is the global batch: each of N ranks trains on batch / (N x accumulation) pairs at a time.
Rank 0 alone prints, saves and registers; the other ranks wait for it, then exit quietly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tether.cli.common import (
    ProjectOption,
    console,
    err_console,
    open_project,
    train_progress,
    using,
)
from tether.errors import TetherInputError
from tether.reward.config import RewardTrainConfig, batch_split

# torch, transformers and the training modules load inside the command, so `tether --help` stays fast.
_D = RewardTrainConfig
StepCallback = Callable[[int, int, dict[str, float]], None]


def train(
    project: ProjectOption = None,
    data: Annotated[
        str | None,
        typer.Option("--data", help="Export artifact id or directory (default: the latest export)."),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option("--base", help="Base model artifact id or directory (default: the SFT policy)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Checkpoint directory (default: .tether/models/rm-<time>).")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the training pairs.")] = _D.epochs,
    batch_size: Annotated[
        int, typer.Option(help="Preference pairs per optimizer step over all processes (the global batch).")
    ] = _D.batch_size,
    gradient_accumulation_steps: Annotated[
        int,
        typer.Option(help="Forward/backward passes per optimizer step; shrinks the per-device batch."),
    ] = _D.gradient_accumulation_steps,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = _D.lr,
    max_length: Annotated[
        int, typer.Option(help="Longest sequence; longer pairs are left out.")
    ] = _D.max_length,
    lora: Annotated[
        bool, typer.Option("--lora/--no-lora", help="Train LoRA adapters and the head only.")
    ] = False,
    margin: Annotated[
        bool, typer.Option("--margin/--no-margin", help="Use the export's per-pair margin in the loss.")
    ] = _D.margin,
    center_coef: Annotated[
        float, typer.Option(help="Centering weight λ in λ·mean((r_c + r_r)²); 0 turns it off.")
    ] = _D.center_coef,
    seed: Annotated[
        int, typer.Option(help="Seed of the head's initialization and the batch order.")
    ] = _D.seed,
    shared_prefix: Annotated[
        bool,
        typer.Option(
            "--shared-prefix/--no-shared-prefix",
            help="Read a pair's common prompt once, where a check shows the model reads it exactly.",
        ),
    ] = _D.shared_prefix,
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse an export labelled under a different spec.")
    ] = False,
    log_to: Annotated[
        list[str] | None,
        typer.Option("--log-to", help="Also log to these trackers (tensorboard, wandb, mlflow, ...)."),
    ] = None,
) -> None:
    """Train a reward model (Bradley–Terry, one forward pass per batch of pairs) and register it."""
    from tether.artifacts import EXPORT_KIND, POLICY_KIND, resolve
    from tether.distributed import is_main_process, process_state
    from tether.reward.train import train_reward_model

    try:
        cfg = RewardTrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            gradient_accumulation_steps=gradient_accumulation_steps,
            lr=lr,
            max_length=max_length,
            lora=lora,
            margin=margin,
            center_coef=center_coef,
            seed=seed,
            shared_prefix=shared_prefix,
        )
    except ValueError as exc:
        raise TetherInputError(f"tether rm train: {exc}") from None
    # Before any work: a global batch the processes do not divide is an input error naming both.
    split = batch_split(cfg, world_size=process_state().num_processes, what="--batch-size")
    proj = open_project(project)
    export = using(resolve(proj, kind=EXPORT_KIND, explicit=data))
    policy = using(resolve(proj, kind=POLICY_KIND, explicit=base))
    console.print(split.describe())
    with train_progress(cfg.log_every) as on_step:
        result = train_reward_model(
            proj,
            cfg,
            data=export.path,
            base=policy.path,
            out=out,
            strict=strict,
            on_warning=lambda message: err_console.print(f"[bold yellow]warning:[/] {escape(message)}"),
            on_step=on_step,
            trackers=log_to or (),
        )
    if not is_main_process():
        return  # rank 0 reports the run; this rank saved and registered nothing
    ident = result.artifact.id if result.artifact else "unregistered"
    m = result.metrics
    heldout = f", held-out accuracy {m['test/accuracy']:.3f}" if "test/accuracy" in m else ""
    console.print(
        f"reward model {ident}: {result.pairs} pairs, {result.steps} steps, "
        f"train accuracy {m['train/accuracy']:.3f}{heldout}, {result.pairs_per_second:.1f} pairs/s"
    )
    if result.batching:
        console.print(f"  {escape(result.batching)}")
    if result.skipped_long:
        console.print(f"  left out {result.skipped_long} pairs longer than {cfg.max_length} tokens")
    from tether.reward.data import read_manifest

    sources = read_manifest(export.path).get("sources") or {}
    if sources:  # raters and imported sources, with the exported pairs each voted on
        console.print("  trained on: " + ", ".join(f"{escape(n)} {k} pairs" for n, k in sources.items()))
    console.print(f"  saved to {escape(str(result.out))}")
