"""`tether rm train` on 2 CPU ranks, started as docs/scaling.md says, against the same run on 1 rank.

    accelerate launch --multi_gpu --num_processes 2 -m tether rm train --batch-size 16 ...

The same global batch on 2 gloo ranks must take the steps 1 rank takes (to float reduction order),
and rank 0 alone must print, write metrics, save and register.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.launch import launch
from tests.reward.synthetic import synthetic_rows
from tests.tiny_llama import save_tiny_llama
from tether.artifacts import REWARD_MODEL_KIND
from tether.labeling.export_files import write_export
from tether.project import Project
from tether.reward.train import META_FILE, METRICS_FILE
from tether.scaffold import init_project
from tether.store import list_artifacts, register_artifact

pytestmark = pytest.mark.slow

# 120 training pairs in global batches of 16: 7 full steps and a short one of 8, which 2 ranks share
# evenly, so the runs must agree on every step.
TRAIN = ["rm", "train", "--epochs", "1", "--batch-size", "16", "--lr", "1e-3"]
STEPS = 8


def tiny_project(root: Path) -> Project:
    """A blank project with a registered tiny Llama policy and a registered synthetic export."""
    project = init_project(root, template="blank")
    policy = save_tiny_llama(project.path("models", "llama"))
    rows = synthetic_rows(144)
    export = project.path("exports", "e1")
    write_export(export, rows[:120], rows[120:], fmt="jsonl", manifest={"spec_hash": project.spec_hash})
    with project.store.session() as session:
        for kind, path in (("policy", policy), ("export", export)):
            register_artifact(
                session,
                project_id=project.project_id,
                kind=kind,
                path=project.relative(path),
                content_hash=kind,
                spec_hash=project.spec_hash,
            )
    return project


@dataclass(frozen=True)
class Runs:
    project: Project
    one: Path
    two: Path
    one_run: subprocess.CompletedProcess[str]
    two_run: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    project = tiny_project(tmp_path_factory.mktemp("distributed-rm") / "proj")
    one, two = project.path("models", "rm-1"), project.path("models", "rm-2")
    two_run = launch([*TRAIN, "--out", str(two)], processes=2, cwd=project.root)
    one_run = launch([*TRAIN, "--out", str(one)], processes=1, cwd=project.root)
    return Runs(project, one, two, one_run, two_run)


def test_two_ranks_take_the_steps_of_one(runs: Runs) -> None:
    assert runs.two_run.returncode == 0, runs.two_run.stderr[-3000:]
    assert runs.one_run.returncode == 0, runs.one_run.stderr[-3000:]
    one, two = (load_file(out / "model.safetensors") for out in (runs.one, runs.two))
    assert one.keys() == two.keys()
    diff = max((one[key] - two[key]).abs().max().item() for key in one)
    print(f"max |2 ranks - 1 rank| over the parameters: {diff:.3e}")
    assert diff <= 1e-5
    base = load_file(runs.project.path("models", "llama", "model.safetensors"))
    moved = max((one[k] - base[k]).abs().max().item() for k in base if k in one)
    assert moved > 1e3 * max(diff, 1e-9)  # training moved the weights far more than the runs differ


def test_rank_zero_alone_writes_saves_and_registers(runs: Runs) -> None:
    project = runs.project
    with project.store.session() as session:
        models = list_artifacts(session, project_id=project.project_id, kind=REWARD_MODEL_KIND)
    assert sorted(m.path for m in models) == sorted(project.relative(p) for p in (runs.one, runs.two))
    rows = [json.loads(line) for line in (runs.two / METRICS_FILE).read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(STEPS))  # one row per optimizer step, once
    assert not [p.name for p in runs.two.parent.iterdir() if p.name.endswith(".partial")]
    # The registered figures are those of one process.
    one, two = (json.loads((out / META_FILE).read_text()) for out in (runs.one, runs.two))
    assert one["steps"] == two["steps"] == STEPS
    assert two["metrics"]["test/accuracy"] == one["metrics"]["test/accuracy"]
    assert two["metrics"]["test/loss"] == pytest.approx(one["metrics"]["test/loss"], abs=1e-5)


def test_the_console_output_is_not_duplicated(runs: Runs) -> None:
    out, err = runs.two_run.stdout, runs.two_run.stderr
    assert out.count("global batch 16 = 8 per device × 2 processes × 1 accumulation step") == 1
    assert out.count("using export ") == out.count("using policy ") == 1
    assert out.count("reward model reward_model-") == 1 and f"{STEPS} steps" in out
    assert out.count("saved to ") == 1 and str(runs.two) in out
    assert "unregistered" not in out
    assert err.count("min_pairs = 5000") == 1  # warnings once, from rank 0
    assert "batch 16\n" in runs.one_run.stdout  # one process, no split to describe


def test_a_global_batch_the_ranks_do_not_divide_is_an_input_error(runs: Runs) -> None:
    out = runs.project.path("models", "rm-odd")
    done = launch(["rm", "train", "--batch-size", "9", "--out", str(out)], processes=2, cwd=runs.project.root)
    # The launcher itself exits 1 (accelerate re-raises torchrun's ChildFailedError); the rank's own
    # exit code 2 is the root cause it reports.
    assert done.returncode != 0
    assert "exitcode  : 2" in done.stderr
    message = "--batch-size 9 is a global batch and must divide evenly over 2 processes = 2"
    assert done.stderr.count(message) == 1, done.stderr[-3000:]
    assert "using export" not in done.stdout  # refused before any work
    assert not out.exists()
