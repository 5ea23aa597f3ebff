"""The labeling acceptance run on the default sandbox world: plan 3,000 tasks, simulate, report, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli.main import app
from tether.labeling.export_files import load_export
from tether.project import Project
from tether.sandbox.build import BuildResult

GOOD = ("good-1", "good-2", "good-3", "good-4")


@pytest.mark.slow
def test_default_pool_on_3000_tasks(sandbox_world: tuple[Project, BuildResult], tmp_path: Path) -> None:
    project, _ = sandbox_world
    runner = CliRunner()
    where = ["--project", str(project.root)]
    planned = runner.invoke(app, ["label", "plan", "--n", "3000", *where])
    assert planned.exit_code == 0, planned.output
    assert "hard-case share 25.0% (spec 25%)" in planned.output
    simulated = runner.invoke(app, ["label", "simulate", *where])
    assert simulated.exit_code == 0, simulated.output
    status = runner.invoke(app, ["raters", "status", "--json", *where])
    assert status.exit_code == 0, status.output
    report = json.loads(status.output)
    raters = {r["name"]: r for r in report["raters"]}
    assert raters["careless"]["status"] == "excluded"
    assert raters["safety-inverted"]["status"] == "excluded"
    assert all(raters[name]["status"] == "active" for name in GOOD)
    assert raters["length-1"]["length_bias"] > 0.65
    assert raters["length-2"]["length_bias"] > 0.65
    assert all(raters[name]["length_bias"] < 0.5 for name in GOOD)
    assert report["pool"]["alpha"] is not None
    exported = runner.invoke(app, ["data", "export", "--out", str(tmp_path / "export"), *where])
    assert exported.exit_code == 0, exported.output
    data = load_export(tmp_path / "export")
    assert len(data["train"]) + len(data["test"]) > 2500
    names = {n for row in data["train"] for n in row["rater_names"]}
    assert not names & {"careless", "safety-inverted"}
    assert set(data["train"][0]) >= {
        "prompt",
        "chosen",
        "rejected",
        "dimension",
        "stratum",
        "margin",
        "spec_hash",
    }
    assert {row["spec_hash"] for row in data["test"]} == {project.spec_hash}
