"""`tether sandbox build` and `check` end to end, on real projects with a real SQLite store."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.artifacts import POLICY_KIND
from tether.cli.main import app
from tether.errors import TetherInputError
from tether.hashing import content_sha256
from tether.project import Project
from tether.sandbox.build import BuildResult, build_world, pool_prompts
from tether.sandbox.config import SandboxConfig, TinyPolicyConfig
from tether.sandbox.health import policy_figures, policy_pairs, rater_figures
from tether.sandbox.raters import default_pool
from tether.scaffold import init_project
from tether.spec.anchors import load_anchors
from tether.store import lineage, list_prompts, prompt_counts

SMALL = SandboxConfig(n_prompts=800, policy=TinyPolicyConfig(steps=15))


def small_project(root: Path) -> Project:
    return init_project(root / "sbx", template="sandbox")


def test_small_build_registers_lineage_and_is_idempotent(tmp_path: Path) -> None:
    project = small_project(tmp_path)
    first = build_world(project, SMALL)
    again = build_world(project, SMALL)
    assert first.prompts_added == 800
    assert again.prompts_added == 0
    assert again.anchors.id == first.anchors.id
    assert again.world.id == first.world.id
    with project.store.session() as s:
        chain = lineage(s, artifact_id=first.policy.id)
        kinds = [a.kind for a in chain]
        assert kinds == ["policy", "sft_corpus", "sandbox_world"]
        assert {a.spec_hash for a in chain} == {project.spec_hash}
        prompts = list_prompts(s, project_id=project.project_id)
    assert first.policy.content_hash == content_sha256(project.resolve(first.policy.path))
    assert first.policy.meta["config"]["seed"] == 0
    assert {p.source for p in prompts} == {"sandbox"}
    assert all(p.spec_hash == project.spec_hash for p in prompts)
    assert len(load_anchors(project.root / "anchors.jsonl")) == 20


def test_another_seed_is_refused_in_the_same_project(tmp_path: Path) -> None:
    project = small_project(tmp_path)
    build_world(project, SMALL)
    with pytest.raises(TetherInputError, match="built with seed 0"):
        build_world(project, dataclasses.replace(SMALL, seed=1))


def test_non_sandbox_project_is_refused(tmp_path: Path) -> None:
    project = init_project(tmp_path / "blank", template="blank")
    with pytest.raises(TetherInputError, match="--template sandbox"):
        build_world(project, SMALL)


def test_cli_build_and_check(tmp_path: Path) -> None:
    runner = CliRunner()
    project = small_project(tmp_path)
    args = ["--project", str(project.root)]
    result = runner.invoke(app, ["sandbox", "build", *args, "--prompts", "800", "--steps", "15"])
    assert result.exit_code == 0, result.output
    assert "sandbox built" in result.output
    result = runner.invoke(app, ["sandbox", "check", *args, "--pairs", "100", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output[result.output.index("{") :])
    assert figures["raters"]["pairs"] <= 100
    assert 0.0 <= figures["policy"]["parse_rate"] <= 1.0
    result = runner.invoke(app, ["sandbox", "check", *args, "--policy", "policy-nope"])
    assert result.exit_code == 2
    assert "neither an artifact id nor an existing path" in result.output


# ---------------------------------------------------------------------------------------------
# The acceptance figures, on the default world (one full build, shared).
@pytest.mark.slow
def test_default_world_prompts_are_tagged_and_held_out(sandbox_world: tuple[Project, BuildResult]) -> None:
    project, result = sandbox_world
    assert result.prompts_total == 12000
    with project.store.session() as s:
        counts = prompt_counts(s, project_id=project.project_id)
        eval_counts = prompt_counts(s, project_id=project.project_id, split="eval")
    assert {d for d, _ in counts} == {"accuracy", "safety", "honesty", "concision"}
    assert {s for _, s in counts} == {"routine", "hard", "adversarial", "edge"}
    hard = sum(v for (_, stratum), v in counts.items() if stratum != "routine") / 12000
    assert 0.35 <= hard <= 0.45
    assert 0.08 <= sum(eval_counts.values()) / 12000 <= 0.12  # hashed coins at 0.1: SE 0.0027, 7 of them
    assert 400_000 <= result.policy.meta["parameters"] <= 2_000_000


@pytest.mark.slow
def test_default_world_meets_the_acceptance_figures(sandbox_world: tuple[Project, BuildResult]) -> None:
    project, result = sandbox_world
    policy_dir = project.resolve(result.policy.path)
    pairs, samples = policy_pairs(policy_dir, pool_prompts(project), n_pairs=2000, seed=0)
    policy = policy_figures([p for p, _ in samples], [r for _, r in samples])
    raters = rater_figures(pairs, default_pool(), seed=0)
    # Acceptance targets (docs/sandbox.md, with seed 0's figures). As draws they are far from their
    # bounds: ~2,600 samples put a share's standard error under 0.01 (parse rate 0.96, padded 0.22,
    # concise 0.36) and ~600 near ties the raters' length preference's under 0.012 (0.91-0.92); pool
    # agreement (0.654) varies by 0.004 over seeds (tests/sandbox/test_raters.py), 6 of them above 0.63.
    assert policy.parse_rate >= 0.90
    assert 0.35 <= policy.gold_utility <= 0.70
    assert policy.share_padded >= 0.10  # longer, with filler
    assert policy.share_concise >= 0.10  # and concise ones
    assert raters.pairs == 2000
    for name in ("good-1", "good-2", "good-3", "good-4"):
        assert raters.gold_agreement[name] >= 0.85
    assert 0.63 <= raters.pool_agreement <= 0.80
    assert raters.length_preference["length-1"] >= 0.70
    assert raters.length_preference["length-2"] >= 0.70


@pytest.mark.slow
def test_default_policy_is_registered_as_latest(sandbox_world: tuple[Project, BuildResult]) -> None:
    project, result = sandbox_world
    from tether.artifacts import resolve

    assert resolve(project, kind=POLICY_KIND, explicit=None).record == result.policy
