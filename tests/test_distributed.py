"""The global-batch split and the launcher's rank, without starting a process group."""

from __future__ import annotations

import pytest

from tether.distributed import env_rank, split_batch
from tether.errors import TetherInputError


@pytest.mark.parametrize(
    ("global_batch", "world", "accum", "per_device"),
    [(32, 1, 1, 32), (32, 2, 1, 16), (32, 2, 4, 4), (6, 3, 2, 1)],
)
def test_a_global_batch_splits_over_processes_and_accumulation(
    global_batch: int, world: int, accum: int, per_device: int
) -> None:
    split = split_batch(global_batch, world_size=world, accumulation=accum)
    assert split.per_device == per_device
    assert split.per_device * world * accum == global_batch


def test_a_batch_the_world_does_not_divide_names_both_numbers() -> None:
    with pytest.raises(TetherInputError, match=r"--batch-size 9 .* 2 processes = 2") as info:
        split_batch(9, world_size=2, what="--batch-size")
    assert "multiple of 2" in str(info.value)
    with pytest.raises(TetherInputError, match=r"2 processes × 3 accumulation steps = 6"):
        split_batch(8, world_size=2, accumulation=3)


def test_a_batch_smaller_than_one_is_refused() -> None:
    with pytest.raises(TetherInputError, match="must be ≥ 1"):
        split_batch(0, world_size=1)


def test_the_description_says_how_the_batch_is_split() -> None:
    assert split_batch(8, world_size=1).describe() == "batch 8"
    assert split_batch(8, world_size=2, accumulation=2).describe() == (
        "global batch 8 = 2 per device × 2 processes × 2 accumulation steps"
    )


def test_the_rank_comes_from_the_launcher_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert env_rank() == 0
    monkeypatch.setenv("PMI_RANK", "3")
    assert env_rank() == 3
    monkeypatch.setenv("RANK", "1")  # torchrun's variable wins
    assert env_rank() == 1
