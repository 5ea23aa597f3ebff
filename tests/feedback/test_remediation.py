"""Targeted relabeling after a failed gate: which checks become which targets, and the batch it writes.

The planning runs on a real store (SQLite, and PostgreSQL when configured) with a sampler that
returns fixed texts, so that what is written can be checked exactly; the probe edits are the
real registered ones.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tether.feedback.loop.remediation import (
    plan_remediation,
    remediation_targets,
    weakest,
)
from tether.project import Project
from tether.reward.gate import GateCheck
from tether.reward.probe_edits import lead_in
from tether.reward.probes import make_probe
from tether.spec.style import StyleLexicons
from tether.store import add_prompts
from tether.store.prompts import NewPrompt, PromptRecord
from tether.store.tasks import slot_counts, task_view, tasks_by_origin

DIMS = ["accuracy", "safety", "honesty", "concision"]


def _check(name: str, decided: str, status: str | None = None) -> GateCheck:
    return GateCheck(
        name=name, value=0.6, low=0.5, high=0.7, bar=0.65, op=">=", status=status or decided,  # type: ignore[arg-type]
        critical=False, decided=decided, message=f"{name}: {decided}",  # type: ignore[arg-type]
    )  # fmt: skip


def test_each_failed_check_names_one_target_and_passed_or_marginal_ones_none() -> None:
    checks = [
        _check("confident probe", "fail"),
        _check("safety accuracy", "fail"),
        _check("hedge probe", "pass", status="marginal"),
        _check("honesty accuracy", "pass"),
    ]
    targets = remediation_targets(checks, dimensions=DIMS, probes=["confident", "hedge"])
    assert [(t.kind, t.name) for t in targets] == [("probe", "confident"), ("dimension", "safety")]
    assert targets[0].reason == "confident probe: fail"


def test_overall_accuracy_and_ece_target_the_two_weakest_dimensions_once() -> None:
    checks = [_check("overall accuracy", "fail"), _check("ECE", "fail"), _check("concision accuracy", "fail")]
    accuracy = {"accuracy": 0.8, "safety": 0.7, "honesty": 0.9, "concision": 0.6}
    targets = remediation_targets(checks, dimensions=DIMS, probes=[], accuracy=accuracy)
    assert [(t.kind, t.name) for t in targets] == [("dimension", "concision"), ("dimension", "safety")]


def test_weakest_puts_unmeasured_first() -> None:
    assert weakest(DIMS, {"accuracy": 0.5, "safety": None}, keep=2) == ["concision", "honesty"]


def _seed_pool(project: Project, n_per_cell: int = 30) -> None:
    prompts = [
        NewPrompt(
            key=f"{dim}-{stratum}-{i}",
            text=f"question {i} about {dim} ({stratum})",
            dimension=dim,
            stratum=stratum,
        )
        for dim in DIMS
        for stratum in ("routine", "hard", "edge")
        for i in range(n_per_cell)
    ]
    with project.store.session() as session:
        add_prompts(session, project_id=project.project_id, prompts=prompts, spec_hash=project.spec_hash)


def _answer(prompts: Sequence[PromptRecord]) -> list[str]:
    return [f"The answer to {p.text} is 42." for p in prompts]


def _two(prompts: Sequence[PromptRecord]) -> list[tuple[str, str]]:
    return [(f"First answer to {p.text}.", f"Second answer to {p.text}.") for p in prompts]


def test_plan_writes_one_batch_of_probe_counterfactuals_and_hard_pairs(project: Project) -> None:
    _seed_pool(project)
    targets = remediation_targets(
        [_check("confident probe", "fail"), _check("safety accuracy", "fail")], dimensions=DIMS,
        probes=["confident"],
    )  # fmt: skip
    plan = plan_remediation(
        project, targets, n=20, sample=_answer, sample_two=_two, labels=("policy-a", "policy-b"),
        name="loop-1-remediation-1", seed=3, edits={"confident": make_probe("confident").edit},
    )  # fmt: skip
    assert plan.batch_id is not None and plan.tasks == 40 and plan.skipped == []
    assert plan.by_target == {"probe:confident": 20, "remediation:safety": 20}
    with project.store.session() as session:
        origins = tasks_by_origin(session, project_id=project.project_id)
        assert origins == {"probe:confident": 20, "remediation:safety": 20}
        # every task goes to raters_per_overlap raters: 40 tasks x 3 open slots
        assert slot_counts(session, project_id=project.project_id)["open"] == 40 * 3
        views = [task_view(session, task_id=i) for i in range(1, 41)]
    probe_views = [v for v in views if v.origin == "probe:confident"]
    for v in probe_views:
        edited = v.response_a if v.meta["edited_side"] == "a" else v.response_b
        original = v.response_b if v.meta["edited_side"] == "a" else v.response_a
        # The generic (non-sandbox) edit puts one of the lexicon's certainty lead-ins first.
        assert edited in {lead_in(p, original) for p in StyleLexicons().confident_prefixes}
    assert {v.meta["edited_side"] for v in probe_views} == {"a", "b"}  # the edit is not always shown second
    hard = [v for v in views if v.origin == "remediation:safety"]
    assert all(v.dimension == "safety" and v.stratum in ("hard", "edge") for v in hard)


def test_a_used_up_pool_plans_what_it_can_and_says_what_ran_short(project: Project) -> None:
    _seed_pool(project, n_per_cell=3)
    targets = remediation_targets([_check("safety accuracy", "fail")], dimensions=DIMS, probes=[])
    plan = plan_remediation(
        project, targets, n=50, sample=_answer, sample_two=_two, labels=("p", "q"), name="r", seed=0,
        edits={},
    )  # fmt: skip
    assert plan.tasks == 6  # the safety cell has 3 hard + 3 edge prompts
    assert plan.skipped == ["remediation:safety: 6 of 50 tasks (the unused pool ran short)"]


def test_nothing_to_plan_writes_nothing(project: Project) -> None:
    plan = plan_remediation(
        project, [], n=50, sample=_answer, sample_two=_two, labels=("p", "q"), name="r", seed=0, edits={}
    )
    assert plan.batch_id is None and plan.tasks == 0
    with project.store.session() as session:
        assert tasks_by_origin(session, project_id=project.project_id) == {}


@pytest.mark.slow
def test_counterfactual_pairs_reach_the_export_and_lineage_with_their_origin(
    sandbox_world: Any, tmp_path: Path
) -> None:
    """On a copy of the sandbox world: plan confident-probe pairs from the SFT policy, let careful
    raters with no style taste label them, export, and read the edit preference back."""
    from tether.feedback.lineage import artifact_lineage
    from tether.feedback.loop.remediation import Target, edit_preference
    from tether.feedback.loop.reward_steps import _sandbox_guard
    from tether.labeling.batches import PairSampler, PolicySource
    from tether.labeling.context import project_labeling_context
    from tether.labeling.dataset import export_preferences
    from tether.labeling.export_files import load_rows
    from tether.sandbox.raters import RaterProfile
    from tether.sandbox.simulate import simulate
    from tether.store import latest_artifact

    world, _ = sandbox_world
    shutil.copytree(world.root, tmp_path / "p")
    project = Project.open(tmp_path / "p")
    with project.store.session() as session:
        sft = latest_artifact(session, project_id=project.project_id, kind="policy")
    assert sft is not None
    sampler = PairSampler(
        PolicySource(project.resolve(sft.path), sft.id), None, seed=0, generation=project.spec.generation
    )
    plan = plan_remediation(
        project, [Target("probe", "confident", "confident probe failed")], n=30, sample=sampler.sample_one,
        sample_two=sampler, labels=sampler.labels, name="remediation-test", seed=0,
        edits={"confident": make_probe("confident").edit}, guard=_sandbox_guard(project),
    )  # fmt: skip
    assert plan.tasks == 30 and plan.by_target == {"probe:confident": 30}
    careful = [RaterProfile(name=f"careful-{i}", temperature=0.004, tie_margin=0.005) for i in range(3)]
    simulate(project, project_labeling_context(project), careful, seed=0)
    export = export_preferences(project, out=tmp_path / "p" / "exports" / "cf", heldout=0.1, seed=0)
    rows = [
        *load_rows(tmp_path / "p" / "exports" / "cf", "train"),
        *load_rows(tmp_path / "p" / "exports" / "cf", "test"),
    ]
    assert rows and {r.origin for r in rows} == {"probe:confident"}
    assert export.artifact.meta["origins"] == {"probe:confident": len(rows)}
    assert artifact_lineage(project, export.artifact.id).details["origins"] == {"probe:confident": len(rows)}
    # Gold says confident phrasing only costs concision, so raters who follow gold closely prefer the
    # unedited response nearly always: the Wilson upper bound of 0 in ~25 is about 0.13, far under 1/2.
    preference = edit_preference(project, rows, probe="confident")
    assert preference.pairs == len(rows) and not preference.raters_prefer_edit
    assert preference.high is not None and preference.high < 0.5
