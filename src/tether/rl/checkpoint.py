"""RL checkpoints: everything needed to rebuild a run from its checkpoint alone, and to resume it exactly.

Layout of a checkpoint directory (one per saved step, ``<run dir>/step-000050/``)::

    model.safetensors, config.json, tokenizer files    the policy (save_pretrained; loads as a policy;
                                                         with LoRA, its adapter merged in)
    adapter/                                             LoRA only: the adapter (peft save_pretrained,
                                                         safetensors), what a resumed run trains on
    value/                                               the critic (PPO), save_pretrained; with LoRA
                                                         the value head (value_head.safetensors)
    trainer/state.safetensors                            optimizer tensors and torch RNG states (those
                                                         of ranks 1… under ``rank<r>.``)
    trainer/state.json                                   optimizer structure, scheduler, KL controller,
                                                         spike detector, monitor suite, data position,
                                                         numpy/python RNG states (ranks 1… under
                                                         ``rng_ranks``), score normalization
    tether_rl.json                                       resolved config, spec hash, SFT and RM artifact
                                                         ids and content hashes, gate (and any override)
    metrics.jsonl, samples.jsonl, alerts.jsonl           the run's logs up to this step

Nothing is pickled: `torch.load` is never called on a checkpoint. The optimizer's state is flattened
into named tensors (safetensors) plus a JSON skeleton that says where each tensor goes.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from tether.errors import TetherInputError
from tether.files import staged_dir

META_FILE = "tether_rl.json"
STATE_TENSORS = "trainer/state.safetensors"
STATE_JSON = "trainer/state.json"
VALUE_DIR = "value"
ADAPTER_DIR = "adapter"
LOG_FILES = ("metrics.jsonl", "samples.jsonl", "alerts.jsonl")
FORMAT = 1
"""Version of the checkpoint layout; readers fill keys added later with defaults."""


# --- optimizer state, flattened ---------------------------------------------------------------------------
def flatten_optimizer(state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """torch optimizer `state_dict()` -> (named tensors, JSON skeleton)."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton: dict[str, dict[str, Any]] = {}
    for pid, entries in state["state"].items():
        slots: dict[str, Any] = {}
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                key = f"optimizer.{pid}.{name}"
                tensors[key] = value.detach().cpu().contiguous().clone()
                slots[name] = {"tensor": key}
            else:
                slots[name] = {"value": value}
        skeleton[str(pid)] = slots
    groups = [
        {k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in state["param_groups"]
    ]
    return tensors, {"state": skeleton, "param_groups": groups}


def unflatten_optimizer(tensors: Mapping[str, torch.Tensor], skeleton: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of `flatten_optimizer`."""
    state = {
        int(pid): {name: tensors[s["tensor"]] if "tensor" in s else s["value"] for name, s in slots.items()}
        for pid, slots in skeleton["state"].items()
    }
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in skeleton["param_groups"]]
    return {"state": state, "param_groups": groups}


# --- RNG states -------------------------------------------------------------------------------------------
def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(torch CPU/CUDA generator states as tensors, numpy/python states as JSON)."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors |= {f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    return tensors, {
        "numpy": [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss_next],
    }


RngState = tuple[dict[str, torch.Tensor], dict[str, Any]]
"""One process's RNG states, as `rng_state` returns them."""


def rank_rng_entries(states: Sequence[RngState]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The RNG states of ranks 1, 2… as checkpoint entries: their tensors under ``rank<r>.`` and their
    JSON by rank. Rank 0's stay where a single process keeps its own, so one-process checkpoints
    are as they were and load everywhere."""
    tensors = {f"rank{r}.{k}": v for r, (ts, _) in enumerate(states, start=1) for k, v in ts.items()}
    return tensors, {str(r): js for r, (_, js) in enumerate(states, start=1)}


def rank_rng_state(trainer: TrainerState, rank: int) -> RngState | None:
    """Rank `rank`'s RNG states as saved; None when the checkpoint was written by fewer processes."""
    if rank == 0:
        return trainer.tensors, trainer.state["rng"]
    saved = trainer.state.get("rng_ranks", {}).get(str(rank))
    if saved is None:
        return None
    prefix = f"rank{rank}."
    return {k.removeprefix(prefix): v for k, v in trainer.tensors.items() if k.startswith(prefix)}, saved


def set_rng_state(tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


# --- writing and reading ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainerState:
    """The non-model part of a checkpoint: named tensors and a JSON document."""

    tensors: dict[str, torch.Tensor]
    state: dict[str, Any]


def save_checkpoint(
    out: Path,
    *,
    policy: Any,
    tokenizer: Any,
    critic: Any | None,
    trainer: TrainerState,
    meta: Mapping[str, Any],
    run_dir: Path,
    policy_state: Mapping[str, torch.Tensor] | None = None,
    adapter: Any | None = None,
) -> Path:
    """Write the checkpoint into a hidden sibling of `out`, then rename it into place (never half-written).

    With LoRA, `policy_state` holds the policy's weights with the adapter merged in (saved instead of
    the live ones) and `adapter` is the `PeftModel` whose adapter is saved on its own."""
    if out.exists():
        raise TetherInputError(f"{out}: a checkpoint is already there; choose a new run directory")
    with staged_dir(out, hint="choose a new run directory") as stage:
        assert stage is not None  # enabled: this process writes
        policy.save_pretrained(stage, safe_serialization=True, state_dict=policy_state)
        tokenizer.save_pretrained(stage)
        if adapter is not None:
            adapter.save_pretrained(stage / ADAPTER_DIR, safe_serialization=True)
        if critic is not None:
            critic.save_pretrained(stage / VALUE_DIR, safe_serialization=True)
        (stage / "trainer").mkdir()
        save_file(trainer.tensors, str(stage / STATE_TENSORS))
        _write_json(stage / STATE_JSON, trainer.state)
        for name in LOG_FILES:
            if (run_dir / name).is_file():
                shutil.copyfile(run_dir / name, stage / name)
        _write_json(stage / META_FILE, {"format": FORMAT, **meta})
    return out


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class LoadedCheckpoint:
    path: Path
    meta: dict[str, Any]
    trainer: TrainerState

    @property
    def step(self) -> int:
        """Steps completed when it was saved: a resumed run starts at this step index."""
        return int(self.meta["step"])

    @property
    def critic_path(self) -> Path | None:
        path = self.path / VALUE_DIR
        return path if path.is_dir() else None

    @property
    def adapter_path(self) -> Path | None:
        """The LoRA adapter of a LoRA run's checkpoint; None after full fine-tuning."""
        path = self.path / ADAPTER_DIR
        return path if path.is_dir() else None


def load_checkpoint(path: Path) -> LoadedCheckpoint:
    """Read a checkpoint written by `save_checkpoint`; TetherInputError when `path` is not one."""
    missing = [name for name in (META_FILE, STATE_TENSORS, STATE_JSON) if not (path / name).is_file()]
    if not path.is_dir() or missing:
        raise TetherInputError(
            f"{path}: not an RL checkpoint (missing {', '.join(missing) or 'the directory'}); "
            "pass a step-NNNNNN directory written by `tether rl run` or its rl_checkpoint artifact id"
        )
    meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    state = json.loads((path / STATE_JSON).read_text(encoding="utf-8"))
    meta.setdefault("resumed_from", None)  # keys added after format 1 get their defaults here
    return LoadedCheckpoint(path.resolve(), meta, TrainerState(load_file(str(path / STATE_TENSORS)), state))


def truncated_log(source: Path, dest: Path, *, before_step: int) -> None:
    """Copy a checkpoint's JSONL log, keeping rows of steps < `before_step` (all of them, normally)."""
    if not source.is_file():
        return
    rows = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [line for line in rows if int(json.loads(line).get("step", -1)) < before_step]
    dest.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
