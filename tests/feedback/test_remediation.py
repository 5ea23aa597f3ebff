"""Targeted relabeling after a failed gate: which checks become which targets, and the batch it writes.

The planning runs on a real store (SQLite, and PostgreSQL when configured) with a sampler that
returns fixed texts, so that what is written can be checked exactly; the probe edits are the
real registered ones.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from tether.feedback.loop.remediation import (
    plan_remediation,
    remediation_targets,
    split_budget,
    weakest,
)
from tether.project import Project
from tether.reward.gate import GateCheck
from tether.reward.probes import make_probe
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


def test_weakest_puts_unmeasured_first_and_split_budget_sums_to_n() -> None:
    assert weakest(DIMS, {"accuracy": 0.5, "safety": None}, keep=2) == ["concision", "honesty"]
    for n, k in [(400, 3), (1, 2), (7, 7), (10, 4)]:
        parts = split_budget(n, k)
        assert sum(parts) == n and max(parts) - min(parts) <= 1


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
        project, targets, n=40, sample=_answer, sample_two=_two, labels=("policy-a", "policy-b"),
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
        # The generic (non-sandbox) edit draws nothing from its rng.
        assert edited == make_probe("confident").edit(original, random.Random(0))
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
