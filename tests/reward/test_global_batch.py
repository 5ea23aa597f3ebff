"""Global batch semantics, in one process: the rank shares of a global batch, the short last batch, the
split's input errors, and gradient accumulation taking the step one large batch would.

The multi-process runs themselves are in test_distributed_rm.py (slow, through the launcher)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from tests.reward.synthetic import save_tiny_policy, write_synthetic_export
from tests.tiny_llama import save_tiny_llama
from tether.errors import TetherInputError
from tether.reward.config import RewardTrainConfig, batch_split
from tether.reward.data import LengthBucketSampler, even_tail, load_preference_data, rank_share
from tether.reward.train import METRICS_FILE, train_checkpoint
from tether.scaffold import init_project


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def sampler(n: int, *, world_size: int = 1, rank: int = 0, accumulation: int = 1) -> LengthBucketSampler:
    lengths = [(i * 37) % 23 + 1 for i in range(n)]
    return LengthBucketSampler(
        lengths,
        batch_size=8,
        bucket_size=3,
        seed=5,
        accumulation=accumulation,
        world_size=world_size,
        rank=rank,
    )


@pytest.mark.parametrize(("world_size", "accumulation"), [(2, 1), (4, 1), (2, 2), (1, 4), (8, 1)])
def test_the_ranks_shares_make_up_the_one_process_global_batches(world_size: int, accumulation: int) -> None:
    one = list(sampler(60))  # 7 full global batches of 8, then a short one of 4
    shares = [
        list(sampler(60, world_size=world_size, rank=rank, accumulation=accumulation))
        for rank in range(world_size)
    ]
    per_rank = 8 // (world_size * accumulation)
    assert all(len(b) == per_rank for rank_batches in shares for b in rank_batches[: 7 * accumulation])
    rebuilt = []
    for step in range(len(shares[0]) // accumulation):
        micro = range(step * accumulation, (step + 1) * accumulation)
        # rank-major within each accumulation step: the contiguous slices of each micro-batch
        rebuilt.append([i for m in micro for rank in range(world_size) for i in shares[rank][m]])
    shards = world_size * accumulation
    assert rebuilt[:7] == one[:7]
    assert rebuilt[7:] == ([one[7][: 4 - 4 % shards]] if shards <= 4 else [])


def test_a_short_last_batch_is_cut_to_equal_shares_or_dropped() -> None:
    batches = [[0, 1, 2, 3], [4, 5, 6]]
    assert even_tail(batches, 1) == batches
    assert even_tail(batches, 2) == [[0, 1, 2, 3], [4, 5]]
    assert even_tail(batches, 4) == [[0, 1, 2, 3]]
    assert rank_share([4, 5, 6, 7], accumulation=2, world_size=2, rank=1) == [[5], [7]]
    assert sampler(60, world_size=2).steps_per_epoch == 8 and sampler(60, world_size=8).steps_per_epoch == 7
    assert len(sampler(60, world_size=2, accumulation=2)) == 16  # micro-batches per pass


def test_a_global_batch_the_processes_do_not_divide_names_both_numbers() -> None:
    cfg = RewardTrainConfig(batch_size=10, gradient_accumulation_steps=2)
    assert batch_split(cfg, world_size=1).per_device == 5
    with pytest.raises(TetherInputError, match=r"batch_size 10 .* 4 processes × 2 accumulation steps = 8"):
        batch_split(cfg, world_size=4)
    with pytest.raises(ValueError, match="gradient_accumulation_steps must be at least 1"):
        RewardTrainConfig(gradient_accumulation_steps=0)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny Llama (no biases: GPT-2's key bias has no true gradient, so Adam turns float noise in it
    into steps of about lr, which would hide what the comparison is about) and a synthetic export."""
    root = tmp_path_factory.mktemp("accumulate")
    return save_tiny_llama(root / "llama"), write_synthetic_export(root / "export", spec_hash="x", n=120)


def test_accumulation_takes_the_step_of_the_whole_global_batch(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    policy, export = inputs
    data = load_preference_data(export)  # 100 training pairs: 6 full global batches of 16 and 4 left
    runs = {}
    for accumulation in (1, 4):
        cfg = RewardTrainConfig(epochs=1, batch_size=16, lr=3e-3, gradient_accumulation_steps=accumulation)
        out = tmp_path / f"k{accumulation}"
        runs[accumulation] = train_checkpoint(cfg, data, base=policy, out=out)
        rows = [json.loads(line) for line in (out / METRICS_FILE).read_text().splitlines()]
        assert len(rows) == runs[accumulation].steps == 7  # optimizer steps, not micro-batches
        assert rows[-1]["train/lr"] > 0 and rows[1]["train/lr"] == cfg.lr  # the schedule counts steps
    one, four = (load_file(tmp_path / name / "model.safetensors") for name in ("k1", "k4"))
    diff = max((one[key] - four[key]).abs().max().item() for key in one)
    assert diff <= 1e-5, diff
    assert runs[1].metrics["test/accuracy"] == runs[4].metrics["test/accuracy"]


def test_cli_prints_the_split_and_refuses_one_that_does_not_divide(tmp_path: Path) -> None:
    from tether.cli.main import app

    project = init_project(tmp_path / "p", template="blank")
    policy = save_tiny_policy(tmp_path / "policy")
    export = write_synthetic_export(tmp_path / "export", spec_hash=project.spec_hash, n=60)
    common = ["rm", "train", "--project", str(project.root), "--data", str(export), "--base", str(policy)]
    bad = CliRunner().invoke(app, [*common, "--batch-size", "16", "--gradient-accumulation-steps", "3"])
    assert bad.exit_code == 2
    assert (
        "--batch-size 16 is a global batch" in bad.output
        and "1 process × 3 accumulation steps = 3" in bad.output
    )
    good = CliRunner().invoke(app, [*common, "--batch-size", "8", "--gradient-accumulation-steps", "2"])
    assert good.exit_code == 0, good.output
    assert "global batch 8 = 4 per device × 1 process × 2 accumulation steps" in good.output
