"""The accelerate configs in examples/accelerate/: each parses with accelerate's own loader and says what it
is for; the multi-CPU one really starts 2 CPU ranks (the others need GPUs, which CI has not)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType

from tests.launch import ACCELERATE, free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "accelerate"
EXPECTED = {
    "multi_cpu.yaml": DistributedType.MULTI_GPU,  # the torchrun launcher; the ranks land on the CPU
    "multi_gpu.yaml": DistributedType.MULTI_GPU,
    "fsdp2.yaml": DistributedType.FSDP,
    "deepspeed_zero2.yaml": DistributedType.DEEPSPEED,
    "deepspeed_zero3.yaml": DistributedType.DEEPSPEED,
}


def test_the_examples_are_the_five_documented_ones() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", EXPECTED)
def test_each_example_parses_and_says_when_to_use_it(name: str) -> None:
    config = load_config_from_file(str(EXAMPLES / name))
    assert config.distributed_type == EXPECTED[name]
    assert config.num_machines == 1 and config.num_processes >= 2
    assert (EXAMPLES / name).read_text(encoding="utf-8").startswith("# When: ")


def test_the_sharded_examples_ask_for_what_their_names_say() -> None:
    fsdp = load_config_from_file(str(EXAMPLES / "fsdp2.yaml")).fsdp_config
    assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_reshard_after_forward"] is True
    assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    for stage in (2, 3):
        zero = load_config_from_file(str(EXAMPLES / f"deepspeed_zero{stage}.yaml")).deepspeed_config
        assert zero["zero_stage"] == stage


@pytest.mark.slow
def test_the_multi_cpu_example_starts_two_cpu_ranks(tmp_path: Path) -> None:
    script = tmp_path / "layout.py"
    script.write_text(
        "from tether.distributed import process_state\n"
        "state = process_state()\n"
        # One file per rank: two ranks printing to one pipe can interleave their lines.
        "import pathlib, sys\n"
        "s = state\n"
        "line = f'{s.process_index} {s.num_processes} {s.distributed_type.value} {s.device.type}'\n"
        "pathlib.Path(sys.argv[0]).with_name(f'rank{state.process_index}.txt').write_text(line)\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [
            *ACCELERATE, "--config_file", str(EXAMPLES / "multi_cpu.yaml"),
            "--main_process_port", str(free_port()), str(script),
        ],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = sorted(p.read_text(encoding="utf-8") for p in tmp_path.glob("rank*.txt"))
    assert lines == ["0 2 MULTI_CPU cpu", "1 2 MULTI_CPU cpu"]
