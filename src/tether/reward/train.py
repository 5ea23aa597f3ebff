"""Bradley–Terry reward-model training: `tether rm train`.

    tether rm train --epochs 1 --batch-size 32     # latest export, current SFT policy as base
    accelerate launch --multi_gpu --num_processes 2 -m tether rm train --batch-size 32   # 2 ranks

Steps: (1) load the export's pairs and check them against the spec, (2) load the base with a fresh
scalar head, (3) tokenize through `scored_text` and bucket by length, (4) train: each step takes a
global batch of B pairs, each rank packing its share into one forward pass (`tether.reward.fit`),
(5) score the held-out split, (6) save with safetensors plus tether_reward.json (config, spec hash,
export hash, lineage, metrics) and register the checkpoint as a `reward_model` artifact (rank 0).

Departures from InstructGPT (Ouyang et al. 2022): pairs are independent rows, not all C(K,2)
comparisons of one prompt per batch element, because exports hold pairs; the loss takes Llama 2's
per-pair margin and TRL's centering term (both configurable). Dropout is off, as in TRL: with it,
the two sides of a pair would be read through different masks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from tether.artifacts import REWARD_MODEL_KIND
from tether.distributed import is_main_process, make_accelerator, process_state, wait_for_everyone
from tether.errors import TetherInputError
from tether.files import check_free_dir, staged_dir
from tether.hashing import content_sha256
from tether.hf import ScoredLayout, context_length, reply_closing, require_safetensors
from tether.reward.config import RewardTrainConfig, batch_split
from tether.reward.data import (
    EncodedPair,
    PreferenceData,
    encode_pairs,
    load_preference_data,
    spec_mismatch,
    sufficiency_warnings,
)
from tether.reward.fit import StepCallback, fit
from tether.reward.model import (
    disable_dropout,
    heldout_metrics,
    load_reward_base,
    save_reward_model,
    with_lora,
)
from tether.store import ArtifactRecord, find_artifact_by_path, register_artifact
from tether.trackers import TrackerSink, accelerator_options, check_trackers, tracker_sinks

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from tether.project import Project

META_FILE = "tether_reward.json"
METRICS_FILE = "metrics.jsonl"
META_FORMAT = 1
"""Version of tether_reward.json's layout; readers fill keys added later with defaults."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """A trained, saved (and, under a project, registered) reward model.

    Every rank of a data-parallel run gets one; only rank 0's carries the artifact."""

    out: Path
    artifact: ArtifactRecord | None
    pairs: int
    """Training pairs used (ties and over-long pairs left out)."""
    skipped_long: int
    """Training pairs left out for exceeding max_length."""
    steps: int
    metrics: dict[str, float]
    """Final metrics: train/* averaged over the last epoch, test/* on the export's held-out split."""
    seconds: float
    """Wall time of the training loop alone (no loading, tokenizing or saving)."""
    pairs_per_second: float
    """Training pairs over all processes per second."""
    warnings: list[str]
    batching: str = ""
    """How the pairs were batched (shared prefixes or full sequences) and why (`fit.Batching`)."""


# --- the project-level entry point ------------------------------------------------------------------------


def train_reward_model(
    project: Project,
    cfg: RewardTrainConfig,
    *,
    data: Path,
    base: Path,
    out: Path | None = None,
    strict: bool = False,
    on_warning: Callable[[str], None] | None = None,
    on_step: StepCallback | None = None,
    trackers: Sequence[str] = (),
) -> TrainResult:
    """Train on the export at `data` from the base checkpoint at `base`, save to `out`, register it.

    Warnings (data sufficiency; an export labelled under another spec) go to `on_warning` before
    training starts; with `strict`, a spec mismatch is an error instead. `out` defaults to a new
    directory under the project's .tether/models/. `on_step(step, total, metrics)` reports progress.

    Under N processes, rank 0 alone registers the checkpoint; every rank returns once it is registered."""
    warn = on_warning or log.warning
    # 1. inputs: fail on a global batch the processes do not divide, a bad base or an unknown
    # tracker, before any work
    batch_split(cfg, world_size=process_state().num_processes)
    check_trackers(trackers)
    preferences = load_preference_data(data)
    require_safetensors(base)
    warnings = [spec_mismatch(project.spec_hash, preferences, strict=strict)]
    warnings += sufficiency_warnings(preferences.train, project.spec)
    warnings = [w for w in warnings if w]
    for message in warnings:
        warn(message)
    out = out or project.path("models", datetime.now(UTC).strftime("rm-%Y%m%d-%H%M%S-%f"))
    check_free_dir(out)
    export_id, base_id = _artifact_ids(project, data, base)
    provenance = {
        "spec_hash": project.spec_hash,
        "export": {
            "path": str(data.resolve()),
            "content_sha256": content_sha256(data),
            "artifact_id": export_id,
            "spec_hash": preferences.manifest.get("spec_hash"),
            "sources": preferences.manifest.get("sources", {}),
            "origins": preferences.manifest.get("origins", {}),
        },
        "base": {"path": str(base.resolve()), "artifact_id": base_id},
        "warnings": warnings,
    }
    # 2-6. train, save
    result = train_checkpoint(
        cfg, preferences, base=base, out=out, provenance=provenance, on_step=on_step, trackers=trackers
    )
    if is_main_process():
        artifact = _register(project, result, cfg, parents=[i for i in (export_id, base_id) if i])
        result = replace(result, artifact=artifact)
    # The other ranks leave only once the artifact exists, so a rank's success means the run's.
    wait_for_everyone()
    return result


def _artifact_ids(project: Project, data: Path, base: Path) -> tuple[str | None, str | None]:
    """The registry ids of the export and the base (None when unregistered), for lineage."""
    project_id = project.project_id
    with project.store.session() as session:
        data_rec, base_rec = (
            find_artifact_by_path(session, project_id=project_id, path=project.relative(path))
            for path in (data, base)
        )
    return data_rec.id if data_rec else None, base_rec.id if base_rec else None


def _register(
    project: Project, result: TrainResult, cfg: RewardTrainConfig, parents: list[str]
) -> ArtifactRecord:
    project_id = project.project_id
    with project.store.session() as session:
        return register_artifact(
            session,
            project_id=project_id,
            kind=REWARD_MODEL_KIND,
            path=project.relative(result.out),
            content_hash=content_sha256(result.out),
            spec_hash=project.spec_hash,
            parents=parents,
            meta={"train_pairs": result.pairs, "metrics": result.metrics, "config": cfg.as_dict()},
        )


# --- a checkpoint from an export, without a project --------------------------------------------------------


def train_checkpoint(
    cfg: RewardTrainConfig,
    data: PreferenceData,
    *,
    base: Path,
    out: Path,
    provenance: dict[str, Any] | None = None,
    on_step: StepCallback | None = None,
    trackers: Sequence[str] = (),
) -> TrainResult:
    """Train, score the held-out split and save to `out` (written in a hidden sibling, then renamed).

    `trackers` (`tether.trackers`) log every step through accelerate; file-based ones write into the
    checkpoint's trackers/ folder. Under N processes, rank 0 alone writes; every rank returns once the
    checkpoint is in place."""
    check_free_dir(out)
    trackers = check_trackers(trackers)
    main = process_state().is_main_process
    with staged_dir(out, enabled=main) as stage:
        logging_dir = (stage or out.parent) / "trackers"
        accelerator = make_accelerator(
            gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            **accelerator_options(trackers, logging_dir=logging_dir),
        )
        check_accumulation(cfg, accelerator)
        set_seed(cfg.seed)
        run = prepare_run(cfg, data, base)
        provenance = provenance or {}
        # 4. train
        metrics_file = stage / METRICS_FILE if stage else None
        sinks = tracker_sinks(accelerator, trackers, run_name=out.name, config=cfg.as_dict())
        try:
            fitted = fit(
                run.model,
                run.train,
                cfg,
                pad_id=run.pad_id,
                accelerator=accelerator,
                metrics_file=metrics_file,
                on_step=logged(on_step, sinks) if main else None,
            )
        finally:
            for sink in sinks:  # before the stage is renamed: a tracker may hold files in it open
                sink.close()
        # 5. held-out split: every rank scores all of it (FSDP's forward needs every rank), so the
        # figures rank 0 records are those of a single process
        model = accelerator.unwrap_model(fitted.model)
        heldout = heldout_metrics(model, run.test, pad_id=run.pad_id, batch_size=cfg.batch_size)
        result = TrainResult(
            out=out,
            artifact=None,
            pairs=len(run.train),
            skipped_long=run.skipped[0],
            steps=fitted.steps,
            metrics={**fitted.metrics, **heldout},
            seconds=fitted.seconds,
            pairs_per_second=fitted.pairs_per_second,
            warnings=list(provenance.get("warnings", [])),
            batching=fitted.batching.describe(),
        )
        # 6. save (rank 0). Collecting the weights is collective: FSDP and ZeRO-3 gather their shards
        # here, so every rank takes part. LoRA merges its adapters from the module instead.
        weights = None if cfg.lora else accelerator.get_state_dict(fitted.model)
        if stage is not None:
            save_reward_model(model, run.tokenizer, stage, state_dict=weights)
            meta = checkpoint_meta(cfg, result, provenance, run=run, ties=data.ties_dropped)
            (stage / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", "utf-8")
    accelerator.wait_for_everyone()
    return result


def logged(on_step: StepCallback | None, sinks: Sequence[TrackerSink]) -> StepCallback | None:
    """`on_step`, also logging each step's metrics to the trackers (None when there is neither)."""
    if not sinks:
        return on_step

    def step(index: int, total: int, metrics: dict[str, float]) -> None:
        for sink in sinks:
            sink.log(index, {k: v for k, v in metrics.items() if k not in ("step", "epoch")})
        if on_step is not None:
            on_step(index, total, metrics)

    return step


def check_accumulation(cfg: RewardTrainConfig, accelerator: Accelerator) -> None:
    """Refuse a launcher config whose gradient accumulation differs from the run's: accelerate lets
    ACCELERATE_GRADIENT_ACCUMULATION_STEPS override the value it is given, which would change the
    per-device batch behind the printed split."""
    if accelerator.gradient_accumulation_steps != cfg.gradient_accumulation_steps:
        raise TetherInputError(
            f"the launcher sets gradient_accumulation_steps = {accelerator.gradient_accumulation_steps}, "
            f"but this run asks for {cfg.gradient_accumulation_steps}; pass "
            f"--gradient-accumulation-steps {accelerator.gradient_accumulation_steps} or drop it from "
            "the accelerate config"
        )


@dataclass(frozen=True)
class PreparedRun:
    """A base model with a fresh head and the tokenized pairs it trains and is tested on."""

    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    train: list[EncodedPair]
    test: list[EncodedPair]
    skipped: tuple[int, int]
    """(train, test) pairs left out for exceeding max_length."""
    max_length: int
    layout: ScoredLayout
    """How the model reads a pair's sides; its closing and system prompt go into tether_reward.json."""

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id)


def prepare_run(cfg: RewardTrainConfig, data: PreferenceData, base: Path) -> PreparedRun:
    """Steps 2-3: the base with a fresh scalar head (LoRA if asked), dropout off; the pairs tokenized."""
    model, tokenizer = load_reward_base(base, seed=cfg.seed)
    disable_dropout(model)
    max_length = min(cfg.max_length, context_length(model))
    system = data.manifest.get("system_prompt")
    layout = ScoredLayout(tokenizer, system if isinstance(system, str) else None, reply_closing(tokenizer))
    train, skipped = encode_pairs(layout, data.train, max_length)
    test, skipped_test = encode_pairs(layout, data.test, max_length)
    if not train:
        raise TetherInputError(
            f"{data.path}: all {skipped} training pairs exceed {max_length} tokens; raise --max-length"
        )
    wrapped = with_lora(model, cfg) if cfg.lora else model
    return PreparedRun(wrapped, tokenizer, train, test, (skipped, skipped_test), max_length, layout)


def checkpoint_meta(
    cfg: RewardTrainConfig, result: TrainResult, provenance: dict[str, Any], *, run: PreparedRun, ties: int
) -> dict[str, Any]:
    """What tether_reward.json holds: enough to rebuild the run and trace it to its inputs."""
    return {
        "format": META_FORMAT,
        "config": cfg.as_dict(),
        **provenance,
        "text_layout": "tether.hf.scored_text",
        "text_closing": run.layout.closing,
        "system_prompt": run.layout.system,
        "max_length": run.max_length,
        "pairs": {
            **{"train": result.pairs, "train_skipped_long": result.skipped_long, "ties_skipped": ties},
            **{"test": len(run.test), "test_skipped_long": run.skipped[1]},
        },
        "steps": result.steps,
        "metrics": result.metrics,
        "seconds": round(result.seconds, 3),
        "pairs_per_second": round(result.pairs_per_second, 2),
        "batching": result.batching,
    }
