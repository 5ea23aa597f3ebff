"""`tether label|raters|data` against a small sandbox labeling project."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tether.cli.main import app
from tether.labeling.context import LabelingContext
from tether.project import Project
from tether.sandbox.config import TinyPolicyConfig

runner = CliRunner()
Lab = tuple[Project, LabelingContext]


def run(project: Project, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--project", str(project.root)])
    return result.exit_code, result.output


def test_raters_add_prints_a_token_once_and_stores_only_its_hash(lab: Lab) -> None:
    project, _ = lab
    code, out = run(project, "raters", "add", "ana")
    assert code == 0, out
    token = out.split("token (shown once, keep it safe): ")[1].split()[0]
    assert len(token) >= 40
    db = project.state_dir / "tether.db"
    if db.exists():
        assert token.encode() not in db.read_bytes()
    assert run(project, "raters", "add", "ana")[0] == 2  # duplicate name
    assert run(project, "raters", "add", "bo", "--kind", "robot")[0] == 2


def test_simulate_status_export_and_their_errors(lab: Lab, tmp_path: Path) -> None:
    project, _ = lab
    code, out = run(project, "label", "simulate")
    assert code == 0, out
    assert "careless" in out and "excluded" in out
    code, out = run(project, "raters", "status", "--json")
    assert code == 0
    report = json.loads(out)
    assert {r["name"] for r in report["raters"]} >= {"good-1", "careless"}
    code, out = run(project, "raters", "status")
    assert code == 0 and "Krippendorff's alpha" in out
    code, out = run(project, "data", "export", "--out", str(tmp_path / "e"), "--format", "hf")
    assert code == 0, out
    assert (tmp_path / "e" / "dataset_dict.json").is_file()
    assert run(project, "data", "export", "--out", str(tmp_path / "e"))[0] == 2  # not empty
    assert run(project, "data", "export", "--out", str(tmp_path / "f"), "--format", "csv")[0] == 2
    assert run(project, "raters", "exclude", "good-1")[0] == 2  # --reason is required
    code, out = run(project, "raters", "exclude", "good-1", "--reason", "audit")
    assert code == 0 and "excluded" in out
    assert run(project, "raters", "readmit", "nobody", "--reason", "x")[0] == 2


def test_bad_pool_file_and_missing_policy_exit_2(lab: Lab, tmp_path: Path) -> None:
    project, _ = lab
    pool = tmp_path / "pool.yaml"
    pool.write_text("raters:\n  - name: x\n    temperature: hot\n", encoding="utf-8")
    code, out = run(project, "label", "simulate", "--pool", str(pool))
    assert code == 2 and "rater #0 (x)" in out
    code, out = run(project, "label", "plan", "--n", "10")
    assert code == 2 and "no policy artifact" in out


def test_plan_shortfall_exits_2_with_cells(lab: Lab) -> None:
    project, _ = lab
    from tether.sandbox.build import build_world
    from tether.sandbox.config import SandboxConfig

    build_world(project, SandboxConfig(n_prompts=1200, policy=TinyPolicyConfig(steps=5)))
    code, out = run(project, "label", "plan", "--n", "5000")
    assert code == 2
    assert "cannot meet the spec's quotas" in out and "need" in out


def test_import_prompts_checks_every_line_then_adds_idempotently(lab: Lab, tmp_path: Path) -> None:
    project, _ = lab
    path = tmp_path / "prompts.jsonl"
    good = {"text": "How do I reset my router?", "dimension": "accuracy", "stratum": "routine"}
    rows = [
        good,
        {"text": "x", "dimension": "tone"},
        {"text": "", "dimension": "safety"},
        {"dimension": "safety"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{oops", encoding="utf-8")
    code, out = run(project, "data", "import-prompts", str(path))
    assert code == 2
    for line in (
        "line 2: 'dimension' must be one of",
        "line 3: 'text'",
        "line 4: 'text'",
        "line 5: not valid JSON",
    ):
        assert line in out
    path.write_text(json.dumps(good) + "\n", encoding="utf-8")
    assert "imported 1 prompts (0 already present)" in run(project, "data", "import-prompts", str(path))[1]
    assert "imported 0 prompts (1 already present)" in run(project, "data", "import-prompts", str(path))[1]
