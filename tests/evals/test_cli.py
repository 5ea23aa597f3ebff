"""`tether eval` against real project directories: exit codes 2 (bad suites, bad graders), 3 (a critical
regression), JSON output, and a full run, compare and list on a tiny sandbox project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.rl.test_loop_support import latest_id, register
from tether.cli.main import app
from tether.evals.results import RESULTS_FILE, RUN_FILE, ResultRow, append_rows
from tether.project import Project
from tether.scaffold import init_project

runner = CliRunner()


def run(project: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["eval", *args, "--project", str(project)])
    return result.exit_code, result.output


@pytest.fixture
def blank(tmp_path: Path) -> Path:
    """A blank project: dimensions safety (critical) and helpfulness."""
    init_project(tmp_path / "proj", template="blank")
    return tmp_path / "proj"


def suite(root: Path, name: str, dimension: str, n: int = 50, **extra: object) -> None:
    cases = [{"id": f"c{i}", "prompt": f"question {i}", "must_not_refuse": True} for i in range(n)]
    (root / "suites" / f"{name}.yaml").write_text(
        yaml.safe_dump({"dimension": dimension, "cases": cases, **extra}), encoding="utf-8"
    )


def test_lint_exits_2_on_an_unknown_dimension(blank: Path) -> None:
    suite(blank, "kindness", "kindness")
    code, out = run(blank, "lint")
    assert code == 2, out
    assert "kindness.yaml: unknown dimension 'kindness'; the spec has safety, helpfulness" in out
    code, out = run(blank, "run", "--checkpoint", "sft")  # checked before any model loads
    assert code == 2 and "unknown dimension 'kindness'" in out


def test_lint_and_run_exit_2_on_an_unknown_grader(blank: Path) -> None:
    suite(blank, "safety", "safety", graders=["programmatic", "vibes"])
    code, out = run(blank, "lint")
    assert code == 2 and "unknown grader 'vibes'; known graders: gold, human, llm_judge, programmatic" in out
    suite(blank, "safety", "safety")
    code, out = run(blank, "run", "--checkpoint", "sft", "--grader", "vibes")
    assert code == 2 and "unknown grader 'vibes'" in out


def test_lint_exits_0_with_warnings(blank: Path) -> None:
    suite(blank, "safety", "safety", n=3)
    code, out = run(blank, "lint")
    assert code == 0, out
    assert "dimension safety has 3 cases" in out and "dimension helpfulness has no suite" in out


def fake_run(root: Path, name: str, checkpoint: str, scores: dict[str, list[float]]) -> Path:
    folder = root / ".tether" / "evals" / name
    folder.mkdir(parents=True)
    rows = [
        ResultRow(d, d, d, f"c{i}", "routine", 0, 0, "p", "r", "programmatic", v)
        for d, values in scores.items()
        for i, v in enumerate(values)
    ]
    append_rows(folder / RESULTS_FILE, rows)
    meta = {
        "checkpoint": {"name": checkpoint, "artifact_id": None, "kind": "directory"},
        "suites": [],
        "seeds": [0],
    }
    (folder / RUN_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return folder


def test_compare_exits_3_when_a_critical_dimension_regressed(blank: Path) -> None:
    a = fake_run(blank, "a", "before", {"safety": [1.0] * 20, "helpfulness": [0.5] * 20})
    b = fake_run(blank, "b", "after", {"safety": [0.0] * 20, "helpfulness": [0.5] * 20})
    code, out = run(blank, "compare", str(a), str(b))
    assert code == 3, out
    assert "REGRESSED" in out and "critical dimension safety regressed in after" in out
    result = runner.invoke(app, ["eval", "compare", str(b), str(a), "--json", "--project", str(blank)])
    assert result.exit_code == 0, result.output
    (payload,) = json.loads(result.stdout)
    assert payload["critical_regressions"] == [] and payload["dimensions"][1]["delta"]["mean"] == 1.0


def test_compare_without_runs_says_which_run_to_make(blank: Path) -> None:
    code, out = run(blank, "compare")
    assert code == 2 and "tether rl run" in out


def test_run_compare_and_list_on_a_tiny_project(tiny_project: Project) -> None:
    root = tiny_project.root
    code, out = run(root, "init-suites", "--per-dimension", "3")
    assert code == 0 and "wrote" in out, out
    assert run(root, "lint")[0] == 0
    code, out = run(root, "run", "--checkpoint", "sft", "--samples", "1", "--max-new-tokens", "12", "--json")
    assert code == 0, out
    sft_run = json.loads(out[out.index("{") :])
    assert sft_run["checkpoint_kind"] == "policy" and set(sft_run["scores"]) == set(
        tiny_project.spec.dimension_ids
    )
    rl_dir = tiny_project.path("rl", "r", "step-000001")
    import shutil

    shutil.copytree(tiny_project.path("models", "sft-seed0"), rl_dir)
    register(tiny_project, "rl_checkpoint", rl_dir, [latest_id(tiny_project, "policy")])
    code, out = run(root, "compare")
    assert code == 2 and "tether eval run --checkpoint rl_checkpoint-" in out
    code, out = run(root, "run", "--samples", "1", "--max-new-tokens", "12", "--suite", "safety")
    assert code == 0 and "eval run eval_run-" in out, out
    code, out = run(root, "compare")
    assert code == 0 and "no change" in out, out  # the same weights answer alike: no regression
    code, out = run(root, "list")
    assert code == 0 and out.count("eval_run-") == 2
