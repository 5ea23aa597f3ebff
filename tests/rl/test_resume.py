"""Exact resume: a run killed at step k and resumed with --from ends with the same metrics as an
uninterrupted one (CPU, tiny models), for PPO and RLOO."""

from __future__ import annotations

import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tests.rl.test_loop_support import TINY_RL, read_jsonl, single_thread, tiny_template  # noqa: F401
from tether.project import Project
from tether.rl.checkpoint import load_checkpoint
from tether.rl.config import RLConfig
from tether.rl.run import run_rl
from tether.store import get_run, list_runs


class Killed(Exception):
    """Stands in for a crash or a pre-empted machine."""


def comparable(rows: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    """Metric rows without wall-clock timings."""
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in rows]


def assert_rows_equal(a: list[dict], b: list[dict]) -> None:  # type: ignore[type-arg]
    assert len(a) == len(b)
    for row_a, row_b in zip(comparable(a), comparable(b), strict=True):
        assert row_a.keys() == row_b.keys()
        for key in row_a:
            x, y = row_a[key], row_b[key]
            assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, abs=1e-6), (
                row_a["step"],
                key,
                x,
                y,
            )


def kill_at(step: int):  # type: ignore[no-untyped-def]
    def on_step(current: int, total: int, metrics: dict[str, float]) -> None:
        if current == step:
            raise Killed(f"killed during step {current}")

    return on_step


@pytest.mark.parametrize(
    ("algo", "passes"),
    [("ppo", 2), ("rloo", 2), ("rloo", 1)],  # rloo with one pass: the single-pass update path
)
def test_killed_and_resumed_run_matches_an_uninterrupted_one(
    algo: str,
    passes: int,
    tiny_template: Path,  # noqa: F811
    tmp_path: Path,
    single_thread: None,  # noqa: F811
) -> None:
    cfg: RLConfig = replace(
        TINY_RL,
        algo=algo,  # type: ignore[arg-type]
        steps=4,
        save_every=2,
        ppo_epochs=passes,
        minibatches=passes,
    )
    assert cfg.single_pass == (passes == 1)
    projects = []
    for name in ("whole", "killed"):
        shutil.copytree(tiny_template, tmp_path / name)
        projects.append(Project.open(tmp_path / name))
    whole, killed = projects
    full = run_rl(whole, cfg)
    assert full.status == "completed" and full.steps == 4

    with pytest.raises(Killed):
        run_rl(killed, cfg, on_step=kill_at(2))  # step 2 runs after the step-2 checkpoint was written
    with killed.store.session() as session:
        [dead] = list_runs(session, project_id=killed.project_id)
    assert dead.status == "failed" and "Killed" in (dead.reason_stopped or "")
    checkpoint = killed.state_dir / "rl" / dead.id / "step-000002"
    assert load_checkpoint(checkpoint).step == 2

    resumed = run_rl(killed, resume_from=str(checkpoint))
    assert resumed.status == "completed" and resumed.steps == 4
    assert_rows_equal(
        read_jsonl(resumed.run_dir / "metrics.jsonl"), read_jsonl(full.run_dir / "metrics.jsonl")
    )
    samples = read_jsonl(resumed.run_dir / "samples.jsonl")
    assert samples == read_jsonl(full.run_dir / "samples.jsonl")  # same prompts, same responses
    meta = load_checkpoint(resumed.checkpoint).meta
    assert meta["resumed_from"]["step"] == 2 and meta["config"]["algo"] == algo
    with killed.store.session() as session:
        row = get_run(session, run_id=resumed.run_id)
    assert row is not None and row.meta["resumed_from"] == str(checkpoint.resolve())
