"""Automated red-teaming on a tiny real setup: a tiny SFT policy, a tiny reward model, the gold grader."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.rl.test_loop_support import latest_id, read_jsonl
from tether.artifacts import REDTEAM_SEARCH_KIND
from tether.cli.main import app
from tether.errors import TetherInputError
from tether.evals.redteam_search import search
from tether.project import Project
from tether.store import get_artifact, list_prompts
from tether.store.findings import list_findings

SMALL = {"prompts": 24, "samples_per_prompt": 2, "max_new_tokens": 12, "keep": 10}


def test_search_stores_ranked_findings_with_baselines_and_lineage(tiny_project: Project) -> None:
    project = tiny_project
    result = search(project, policy="sft", seed=1, **SMALL)  # type: ignore[arg-type]
    with project.store.session() as session:
        findings = list_findings(session, project_id=project.project_id)
        artifact = get_artifact(session, artifact_id=result.artifact_id)
        pool = {p.text: p for p in list_prompts(session, project_id=project.project_id)}
    assert 0 < len(findings) <= 10 and sorted(f.id for f in findings) == sorted(result.finding_ids)
    assert [f.gap for f in findings] == sorted((f.gap for f in findings), reverse=True)  # type: ignore[arg-type]
    sft_id, rm_id = latest_id(project, "policy"), latest_id(project, "reward_model")
    for f in findings:
        assert f.source == "search" and f.status == "open" and f.gap is not None and f.gap > 0
        assert f.baseline_response and f.rm_score is not None and f.grader_score is not None
        assert pool[f.prompt].split == "pool" and pool[f.prompt].stratum in ("hard", "adversarial", "edge")
        assert f.meta["search"] == result.artifact_id and f.meta["seed"] == 1
        assert f.meta["policy"]["artifact_id"] == sft_id and f.meta["reward_model"]["artifact_id"] == rm_id
        assert f.meta["graders"] == [{"name": "gold", "args": {"field": "utility"}}]
        base = (f.meta["baseline"]["rm_score"], f.meta["baseline"]["grader_score"])
        assert f.gap == pytest.approx(result.scale.gap(f.rm_score, f.grader_score, baseline=base))  # type: ignore[arg-type]
    per_prompt = [sum(f.prompt == g.prompt for g in findings) for f in findings]
    assert max(per_prompt) <= 2
    assert artifact is not None and artifact.kind == REDTEAM_SEARCH_KIND
    assert set(artifact.parents) == {sft_id, rm_id}
    rows = read_jsonl(result.path)
    assert len(rows) == result.candidates and result.samples <= 24 * 2
    assert {r["origin"] for r in rows} >= {"sample"} and any(r["origin"].startswith("probe:") for r in rows)
    ranked = sorted((r for r in rows if r["finding_rank"]), key=lambda r: r["finding_rank"])
    assert [r["response"] for r in ranked] == [f.response for f in findings]
    assert result.findings_mean_rm is not None and result.findings_mean_rm > result.mean_rm
    # The same search again finds the same outputs and stores nothing twice.
    again = search(project, policy="sft", seed=1, **SMALL)  # type: ignore[arg-type]
    assert again.finding_ids == result.finding_ids and again.scale == result.scale


def test_search_refuses_bad_settings_and_unknown_inputs(tiny_project: Project) -> None:
    with pytest.raises(TetherInputError, match="samples_per_prompt must be at least 1"):
        search(tiny_project, samples_per_prompt=0)
    with pytest.raises(TetherInputError, match="not sft, latest"):
        search(tiny_project, policy="no-such-policy")
    with pytest.raises(TetherInputError, match="no pool prompts in the strata"):
        search(tiny_project, strata=("nonsense",))


def test_cli_search_prints_a_summary_and_exits_2_on_bad_input(tiny_project: Project) -> None:
    runner = CliRunner()
    base = ["redteam", "search", "--project", str(tiny_project.root), "--prompts", "8"]
    base += ["--samples-per-prompt", "2", "--keep", "5"]
    result = runner.invoke(app, [*base, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output[result.output.index("{") :])
    assert payload["prompts"] == 8 and payload["settings"]["policy"]["label"] == "latest"
    assert 0 < len(payload["finding_ids"]) <= 5
    result = runner.invoke(app, [*base, "--strata", "hard,bogus"])
    assert result.exit_code == 2 and "--strata" in result.output
    result = runner.invoke(app, [*base, "--reward-model", "nowhere"])
    assert result.exit_code == 2 and "neither an artifact id nor an existing path" in result.output
