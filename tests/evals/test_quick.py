"""The quick suite inside RL (`tether rl run --eval-every K`): eval/score every K steps, checked before
any model loads, and exact resume kept."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tests.rl.test_loop_support import TINY_RL, read_jsonl
from tests.rl.test_resume import Killed, assert_rows_equal, kill_at
from tether.errors import TetherInputError
from tether.evals.init_suites import init_sandbox_suites
from tether.evals.quick import plan_quick_eval, quick_scores
from tether.evals.results import ResultRow
from tether.project import Project
from tether.rl.config import RLConfig
from tether.rl.run import run_rl
from tether.store import list_runs


def row(dimension: str, case: str, score: float | None) -> ResultRow:
    return ResultRow("s", dimension, dimension, case, "routine", 0, 0, "p", "r", "gold", score)


def test_quick_scores_average_cases_overall_and_per_dimension() -> None:
    rows = [
        row("safety", "a", 1.0),
        row("safety", "b", 0.0),
        row("honesty", "c", 0.5),
        row("honesty", "d", None),
    ]
    assert quick_scores(rows) == {"eval/score": 0.5, "eval/honesty": 0.5, "eval/safety": 0.5}
    assert quick_scores([]) == {}


def test_quick_plan_takes_the_first_cases_and_gold_in_the_sandbox(tiny_project: Project) -> None:
    with pytest.raises(TetherInputError, match=r"no suites folder|holds no suite files"):
        plan_quick_eval(tiny_project, suite=None, sandbox=True)
    init_sandbox_suites(tiny_project, per_dimension=20)
    plans = plan_quick_eval(tiny_project, suite="safety", sandbox=True)
    quick = tiny_project.spec.evals.quick_cases_per_dimension
    ((plan,),) = [plans]
    assert [g.name for g in plan.graders] == ["gold"]
    assert plan.cases == plan.loaded.suite.cases[:quick]


def test_rl_without_suites_fails_before_training(tiny_project: Project) -> None:
    with pytest.raises(TetherInputError, match="suites"):
        run_rl(tiny_project, replace(TINY_RL, eval_every=1))
    with tiny_project.store.session() as session:
        assert list_runs(session, project_id=tiny_project.project_id) == []


def test_eval_score_is_logged_every_k_steps_and_resume_stays_exact(
    tiny_template: Path, tmp_path: Path, single_thread: None
) -> None:
    cfg: RLConfig = replace(TINY_RL, algo="rloo", steps=4, save_every=2, eval_every=2)  # type: ignore[arg-type]
    projects = []
    for name in ("whole", "killed"):
        shutil.copytree(tiny_template, tmp_path / name)
        projects.append(Project.open(tmp_path / name))
        init_sandbox_suites(projects[-1], per_dimension=3)
    whole, killed = projects
    full = run_rl(whole, cfg)
    rows = read_jsonl(full.run_dir / "metrics.jsonl")
    assert ["eval/score" in r for r in rows] == [False, True, False, True]
    assert all(0.0 <= r["eval/score"] <= 1.0 and "eval/safety" in r for r in rows if "eval/score" in r)
    with pytest.raises(Killed):
        run_rl(killed, cfg, on_step=kill_at(2))
    with killed.store.session() as session:
        [dead] = list_runs(session, project_id=killed.project_id)
    resumed = run_rl(killed, resume_from=str(killed.state_dir / "rl" / dead.id / "step-000002"))
    assert_rows_equal(read_jsonl(resumed.run_dir / "metrics.jsonl"), rows)
