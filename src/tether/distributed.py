"""What the data-parallel ranks of one run share: the accelerator, which rank is rank 0, the batch split.

    accelerate launch --multi_gpu --num_processes 2 -m tether rm train ...   # 2 ranks (gloo on CPU)

accelerate's launcher starts the ranks (`torchrun` underneath); Tether never spawns processes itself.
On a machine without an accelerator, `--multi_gpu` still starts N ranks, and `make_accelerator` puts
them on the CPU with the gloo backend: accelerate only picks its multi-CPU layout when told to use
the CPU, and its own `--cpu` flag starts a single process.

Every stage that trains builds its `Accelerator` here, so all of them agree on the layout, and
`split_batch` is the one place where a global batch becomes a per-device one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tether.errors import TetherInputError

if TYPE_CHECKING:
    from accelerate import Accelerator, PartialState

RANK_VARIABLES = ("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK")
"""Where launchers put a process's global rank (torchrun, Open MPI, Intel MPI / MPICH, MVAPICH)."""


def env_rank() -> int:
    """This process's rank as the launcher set it, without starting a process group (0 when alone).

    For decisions taken before any model exists, such as whether this process prints."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name)
        if value not in (None, ""):
            return int(value)
    return 0


def use_cpu() -> bool:
    """Whether the ranks run on the CPU: asked for (ACCELERATE_USE_CPU), or there is no GPU to use."""
    from accelerate.utils import parse_flag_from_env

    if parse_flag_from_env("ACCELERATE_USE_CPU"):
        return True
    import torch

    has_xpu = hasattr(torch, "xpu") and torch.xpu.is_available()
    return not (torch.cuda.is_available() or has_xpu or torch.backends.mps.is_available())


def make_accelerator(**kwargs: Any) -> Accelerator:
    """An `Accelerator` on the launcher's layout: N gloo ranks on CPU, N devices otherwise."""
    from accelerate import Accelerator

    return Accelerator(cpu=use_cpu(), **kwargs)


def process_state() -> PartialState:
    """The launcher's process layout (starts the process group on first use, like `Accelerator`)."""
    from accelerate import PartialState

    return PartialState(cpu=use_cpu())


def is_main_process() -> bool:
    """Rank 0: the one process that prints, writes metrics, saves and registers artifacts."""
    return bool(process_state().is_main_process)


def wait_for_everyone() -> None:
    """A barrier over all ranks (a no-op on one process)."""
    process_state().wait_for_everyone()


@dataclass(frozen=True)
class BatchSplit:
    """A global batch and its per-device share: global = per_device × world_size × accumulation."""

    global_batch: int
    world_size: int
    accumulation: int
    per_device: int

    def describe(self) -> str:
        if self.world_size == 1 and self.accumulation == 1:
            return f"batch {self.global_batch}"
        return (
            f"global batch {self.global_batch} = {self.per_device} per device × {self.world_size} "
            f"process{'es' if self.world_size > 1 else ''} × {self.accumulation} accumulation "
            f"step{'s' if self.accumulation > 1 else ''}"
        )


def split_batch(
    global_batch: int, *, world_size: int, accumulation: int = 1, what: str = "batch size"
) -> BatchSplit:
    """The per-device batch of a global one; an input error naming the numbers when it does not divide.

    `what` names the setting in the message (e.g. "--batch-size", "rl.batch_size")."""
    if global_batch < 1 or world_size < 1 or accumulation < 1:
        raise TetherInputError(
            f"{what} {global_batch}, world size {world_size} and accumulation {accumulation} must be ≥ 1"
        )
    shards = world_size * accumulation
    if global_batch % shards:
        parts = f"{world_size} process{'es' if world_size > 1 else ''}"
        if accumulation > 1:
            parts += f" × {accumulation} accumulation steps"
        raise TetherInputError(
            f"{what} {global_batch} is a global batch and must divide evenly over {parts} = {shards}; "
            f"use a multiple of {shards}"
        )
    return BatchSplit(global_batch, world_size, accumulation, global_batch // shards)
