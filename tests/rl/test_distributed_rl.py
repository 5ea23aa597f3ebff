"""`tether rl run` on 2 data-parallel CPU ranks, started the way docs/rl.md says: accelerate's launcher,
gloo ranks (`tests.launch`). The policy is a random-init Llama with a byte-level BPE tokenizer built
here, on the tiny sandbox project's prompts.

- With sampling seeded per prompt, 2 ranks draw the same tokens and make the same updates as 1 rank
  on the same global batch (parameters to 1e-5; the max difference is printed).
- A 2-rank run killed (SIGKILL to the launcher and both ranks) after its step-2 checkpoint and resumed
  on 2 ranks ends with the parameters, metrics and samples of an uninterrupted one.
- Each finished run registers one artifact and prints its console output once.
- A global batch that 2 ranks cannot split exits 2 on every rank, naming both numbers.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file

from tests.launch import launch, launch_command
from tests.rl.test_loop_support import (  # noqa: F401
    one_thread,
    pass_gate,
    read_jsonl,
    register,
    single_thread,
    tiny_template,
)
from tests.rl.test_lora import save_llama_pair
from tests.rl.test_resume import assert_rows_equal
from tether.project import Project
from tether.rl.config import RLConfig
from tether.rl.inputs import pool_prompts
from tether.rl.run import run_rl
from tether.store import list_artifacts, list_runs

pytestmark = pytest.mark.slow

CFG = RLConfig(
    algo="rloo", steps=4, batch_size=4, samples_per_prompt=2, max_new_tokens=12, ppo_epochs=1,
    minibatches=1, lr=1e-3, seed_per_prompt=True, save_every=2, sample_every=1,
)  # fmt: skip
FLAGS = [
    "--algo", "rloo", "--samples-per-prompt", "2", "--max-new-tokens", "12",
    "--ppo-epochs", "1", "--minibatches", "1", "--lr", "1e-3", "--seed-per-prompt", "--save-every", "2",
    "--sample-every", "1",
]  # fmt: skip
TOLERANCE = 1e-5


@dataclass(frozen=True)
class LlamaProject:
    root: Path
    policy: str
    reward_model: str

    def copy(self, dest: Path) -> Path:
        shutil.copytree(self.root, dest)
        return dest

    def rl_run(self, root: Path, *extra: str, batch_size: int = 4) -> list[str]:
        inputs = ["--policy", self.policy, "--reward-model", self.reward_model]
        return ["rl", "run", "--project", str(root), *inputs, "--batch-size", str(batch_size), *FLAGS, *extra]


@dataclass(frozen=True)
class Finished:
    root: Path
    stdout: str

    @property
    def run_dir(self) -> Path:
        [run_dir] = (self.root / ".tether" / "rl").iterdir()
        return run_dir


@pytest.fixture(scope="module")
def llama(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> LlamaProject:  # noqa: F811
    root = tmp_path_factory.mktemp("rl-ddp") / "template"
    shutil.copytree(tiny_template, root)
    with one_thread():
        project = Project.open(root)
        texts = [p.text for p in pool_prompts(project)] * 4
        sft, rm = save_llama_pair(project.path("models", "x").parent, texts)
        policy = register(project, "policy", sft, meta={"role": "sft"})
        rm_id = register(project, "reward_model", rm)
        pass_gate(project, rm_id)
        project.store.close()
    return LlamaProject(root, policy, rm_id)


@pytest.fixture(scope="module")
def two_ranks(llama: LlamaProject, tmp_path_factory: pytest.TempPathFactory) -> Finished:
    """The uninterrupted 2-rank run: 4 steps, checkpoints at steps 2 and 4."""
    root = llama.copy(tmp_path_factory.mktemp("rl-ddp") / "two")
    done = launch(llama.rl_run(root, "--steps", "4"), processes=2, cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    return Finished(root, done.stdout)


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / "model.safetensors"))


def max_difference(a: Path, b: Path) -> float:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def artifacts(root: Path) -> list[str]:
    project = Project.open(root)
    with project.store.session() as session:
        found = list_artifacts(session, project_id=project.project_id, kind="rl_checkpoint")
    project.store.close()
    return [a.id for a in found]


def assert_printed_once(stdout: str, steps: int) -> None:
    """One rank's console: every line once, the closing line once."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == len(set(lines)), stdout
    assert stdout.count(f"completed after {steps} steps") == 1, stdout
    assert stdout.count("rl: prompts per step: global batch 4 = 2 per device × 2 processes") == 1, stdout


def test_two_ranks_draw_the_tokens_and_take_the_steps_of_one(
    llama: LlamaProject,
    two_ranks: Finished,
    tmp_path: Path,
    single_thread: None,  # noqa: F811
) -> None:
    one = run_rl(
        Project.open(llama.copy(tmp_path / "one")), CFG, policy=llama.policy, reward_model=llama.reward_model
    )
    assert one.status == "completed" and one.steps == 4
    for step in ("step-000002", "step-000004"):  # after 2 updates, and after 4
        diff = max_difference(one.run_dir / step, two_ranks.run_dir / step)
        print(f"\n2 ranks vs 1 rank, {step}: max |Δ parameter| = {diff:.3g}")
        assert diff <= TOLERANCE
    ours, theirs = read_jsonl(two_ranks.run_dir / "samples.jsonl"), read_jsonl(one.run_dir / "samples.jsonl")
    assert len(ours) == len(theirs) == 4 * CFG.episodes_per_step
    for key in ("step", "prompt_key", "response", "eos"):  # the same tokens, in the same global order
        assert [row[key] for row in ours] == [row[key] for row in theirs], key
    assert all(
        math.isclose(a["rm_score"], b["rm_score"], abs_tol=1e-5) for a, b in zip(ours, theirs, strict=True)
    )
    rows = zip(
        read_jsonl(two_ranks.run_dir / "metrics.jsonl"),
        read_jsonl(one.run_dir / "metrics.jsonl"),
        strict=True,
    )
    for a, b in rows:  # every metric the monitors and KL control read, over the global batch
        assert list(a) == list(b)
        worst = max((abs(a[k] - b[k]), k) for k in a if not k.startswith("time/") and not math.isnan(a[k]))
        assert worst[0] <= 1e-4, (a["step"], worst)
    alerts = [
        read_jsonl(run / "alerts.jsonl") if (run / "alerts.jsonl").exists() else []
        for run in (two_ranks.run_dir, one.run_dir)
    ]
    assert [(a["step"], a["monitor"], a["severity"]) for a in alerts[0]] == [
        (a["step"], a["monitor"], a["severity"]) for a in alerts[1]
    ]
    assert_printed_once(two_ranks.stdout, 4)
    [artifact] = artifacts(two_ranks.root)  # one registered artifact: rank 0's final checkpoint
    assert f"checkpoint {artifact}" in two_ranks.stdout


def kill_after_checkpoint(args: list[str], root: Path, checkpoint: str, timeout: float = 300) -> Path:
    """Start `tether ARGS` on 2 ranks and SIGKILL the launcher and both ranks once `checkpoint` exists.

    Every process by its id: torchrun starts each rank in a session of its own, so a signal to the
    launcher's process group would leave the ranks training on."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    with (root / "killed.log").open("w") as log:
        proc = subprocess.Popen(launch_command(args, processes=2), cwd=root, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        try:
            while not list((root / ".tether" / "rl").glob(f"*/{checkpoint}")):
                assert proc.poll() is None, (root / "killed.log").read_text()
                assert time.monotonic() < deadline, "no checkpoint in time"
                time.sleep(0.05)
        finally:
            kill_with_children(proc.pid)
    [found] = (root / ".tether" / "rl").glob(f"*/{checkpoint}")
    return found


def kill_with_children(pid: int) -> None:
    """SIGKILL a process and every process it started, then reap them."""
    try:
        launcher = psutil.Process(pid)
        processes = [launcher, *launcher.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(processes, timeout=30)


def test_a_killed_two_rank_run_resumes_exactly(
    llama: LlamaProject, two_ranks: Finished, tmp_path: Path
) -> None:
    root = llama.copy(tmp_path / "killed")
    # a long run, so it is surely still going when the kill comes; a resume may shorten --steps
    checkpoint = kill_after_checkpoint(llama.rl_run(root, "--steps", "1000"), root, "step-000002")
    project = Project.open(root)
    with project.store.session() as session:
        [dead] = list_runs(session, project_id=project.project_id)
    assert dead.status == "running" and artifacts(root) == []  # killed: nothing closed or registered
    left = sorted(p.name for p in checkpoint.parent.glob("step-*"))
    resumed = launch(
        ["rl", "run", "--project", str(root), "--from", str(checkpoint), "--steps", "4"],
        processes=2,
        cwd=root,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_printed_once(resumed.stdout, 4)
    run_dirs = [d for d in (root / ".tether" / "rl").iterdir() if d.name != dead.id]
    [run_dir] = run_dirs
    diff = max_difference(run_dir / "step-000004", two_ranks.run_dir / "step-000004")
    print(f"\nresumed vs uninterrupted (2 ranks each): max |Δ parameter| = {diff:.3g}")
    assert diff <= TOLERANCE
    assert_rows_equal(read_jsonl(run_dir / "metrics.jsonl"), read_jsonl(two_ranks.run_dir / "metrics.jsonl"))
    assert read_jsonl(run_dir / "samples.jsonl") == read_jsonl(two_ranks.run_dir / "samples.jsonl")
    assert len(artifacts(root)) == 1 and len(artifacts(two_ranks.root)) == 1  # one per finished run
    assert (
        sorted(p.name for p in checkpoint.parent.glob("step-*")) == left
    )  # no rank trained on after the kill


def test_a_global_batch_two_ranks_cannot_split_exits_2_naming_both_numbers(
    llama: LlamaProject, tmp_path: Path
) -> None:
    root = llama.copy(tmp_path / "odd")
    failed = launch(llama.rl_run(root, "--steps", "1", batch_size=5), processes=2, cwd=root)
    # accelerate's launcher exits 1 whenever a rank fails; torchrun reports each rank's own exit code
    assert failed.returncode != 0 and "exitcode  : 2" in failed.stderr, failed.stderr
    assert (
        "--batch-size (rl.batch_size) 5 is a global batch and must divide evenly over 2 processes"
        in failed.stderr
    )
    project = Project.open(root)
    with project.store.session() as session:
        assert list_runs(session, project_id=project.project_id) == []  # refused before any run opened
