"""The labeling acceptance run on the default sandbox world: plan 3,000 tasks, simulate, report, export."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

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
    # A good rater's share of longer picks is near 0.5 (0.43-0.51 measured across CPUs and thread
    # counts), a sampled figure: over its ~400 habitual judgments (3,000 tasks, ~1.4 slots each, over
    # ~10 raters) its standard error is at most 0.5 / sqrt(400) = 0.025. 0.6 is 4 standard errors
    # above an indifferent 0.5, and still below every length-biased rater (> 0.65 above).
    assert all(raters[name]["length_bias"] < 0.6 for name in GOOD)
    assert report["pool"]["alpha"] is not None
    _check_anchor_gamer(raters, runner, where)
    exported = runner.invoke(app, ["data", "export", "--out", str(tmp_path / "export"), *where])
    assert exported.exit_code == 0, exported.output
    data = load_export(tmp_path / "export")
    assert len(data["train"]) + len(data["test"]) > 2500
    names = {n for row in data["train"] for n in row["rater_names"]}
    assert not names & {"careless", "safety-inverted"}
    assert "safety-gamer" in names  # active, so its labels count until an admin decides
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
    _exclude_gamer_and_export(runner, where, tmp_path, train_rows=len(data["train"]))


def _check_anchor_gamer(raters: dict[str, Any], runner: CliRunner, where: list[str]) -> None:
    """safety-gamer answers every anchor as the experts, so only peer agreement on safety catches it."""
    gamer = raters["safety-gamer"]
    assert gamer["status"] == "active"
    assert gamer["anchor_agreement"] == 1.0
    assert gamer["anchors_judged"] > 20  # calibration and hidden anchors alike
    assert gamer["judgments"] - gamer["anchors_judged"] > 500  # live judgments
    # The gamer is inverted on safety only, so the safety flag is what catches it. Its agreement on
    # the other dimensions is sampled near the pool's and crossed the flag's bound on accuracy too on
    # one CI run (the tiny policy, and so the samples, differ by CPU); that flag is not asserted.
    assert "safety" in gamer["peer_flags"]
    others = [r["peer_agreement"]["safety"] for name, r in raters.items() if name != "safety-gamer"]
    # The figure is a share over ~50 safety tasks drawn from the world's own samples, which
    # vary by CPU (0.24 here, 0.32 on CI), so the test holds it to what defines an adversary:
    # below a coin flip against peers, and below every other rater in the pool.
    assert gamer["peer_agreement"]["safety"] < 0.5
    assert gamer["peer_agreement"]["safety"] < min(a for a in others if a is not None)
    assert gamer["peer_items"]["safety"] >= 40
    assert all(r["peer_flags"] == [] for name, r in raters.items() if name != "safety-gamer")
    shown = runner.invoke(app, ["raters", "status", *where])
    assert shown.exit_code == 0, shown.output
    # The suggested command names every flagged dimension, in the spec's order; an extra sampled flag
    # (accuracy, on some CPUs) may come first, so only the safety clause's presence is asserted.
    suggestion = next(
        line for line in shown.output.splitlines() if "tether raters exclude safety-gamer" in line
    )
    assert '--reason "peer agreement ' in suggestion and re.search(
        r"safety 0\.\d\d over \d+ tasks", suggestion
    )
    assert gamer["status"] == "active"  # flagged, never excluded by the report


def _exclude_gamer_and_export(
    runner: CliRunner, where: list[str], tmp_path: Path, *, train_rows: int
) -> None:
    """An admin excludes the flagged rater; its labels leave the export but stay for analysis."""
    excluded = runner.invoke(app, ["raters", "exclude", "safety-gamer", "--reason", "peer agreement", *where])
    assert excluded.exit_code == 0, excluded.output
    kept = {}
    for name, extra in (("without", []), ("with", ["--include-excluded"])):
        out = tmp_path / f"export-{name}"
        result = runner.invoke(app, ["data", "export", "--out", str(out), *extra, *where])
        assert result.exit_code == 0, result.output
        kept[name] = load_export(out)["train"]
    assert len(kept["without"]) < len(kept["with"]) == train_rows
    assert "safety-gamer" not in {n for row in kept["without"] for n in row["rater_names"]}
    assert "safety-gamer" in {n for row in kept["with"] for n in row["rater_names"]}
