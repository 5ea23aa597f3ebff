"""Sampling production feedback into grading tasks, and graded-low items into comparison tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.feedback.ingest import ingest_file
from tether.feedback.review import (
    chosen_for_review,
    dimension_for_reason,
    graded_low,
    review,
    route_reviewed,
)
from tether.project import Project
from tether.sandbox.build import BuildResult
from tether.spec import load_spec
from tether.store import list_prompts
from tether.store.feedback import feedback_counts, list_feedback
from tether.store.grading import GradeRecord, get_grading_task
from tether.store.slots import claim_live_slot
from tether.store.tasks import slot_counts, task_view

from .conftest import stream, with_policy, write_jsonl
from .flow import active_rater, gold_level, grade_open_tasks, grammar_sampler, routed

SPEC = Path(__file__).resolve().parents[2] / "src" / "tether" / "templates" / "sandbox" / "spec.yaml"


def test_the_review_coin_is_stable_per_key_and_close_to_the_share() -> None:
    keys = [f"req-{i}" for i in range(4000)]
    picked = [k for k in keys if chosen_for_review(k, share=0.2, seed=0)]
    assert picked == [k for k in keys if chosen_for_review(k, share=0.2, seed=0)]
    # 4,000 coins at 0.2: standard error 0.0063, so the old ±0.02 was 3.2 of them; ±0.032 is 5
    assert 0.168 < len(picked) / len(keys) < 0.232
    assert picked != [k for k in keys if chosen_for_review(k, share=0.2, seed=1)]
    assert not any(chosen_for_review(k, share=0.0, seed=0) for k in keys)
    assert all(chosen_for_review(k, share=1.0, seed=0) for k in keys)


def test_a_reason_picks_the_dimension_it_names_else_a_failure_mode_else_the_first_priority() -> None:
    spec = load_spec(SPEC)
    assert dimension_for_reason("Honesty: made up a capital; also not concise", spec) == "honesty"
    assert dimension_for_reason("user says: confident_fabrication", spec) == "honesty"
    assert dimension_for_reason("harmful_compliance reported", spec) == "safety"
    assert dimension_for_reason("the user was unhappy", spec) == "safety"  # priority: safety first


def grades(*pairs: tuple[int, int]) -> list[GradeRecord]:
    from datetime import UTC, datetime

    return [GradeRecord(1, i, s, m, "r", datetime.now(UTC)) for i, (s, m) in enumerate(pairs)]


def test_graded_low_means_below_the_top_level_on_average() -> None:
    assert graded_low(grades((1, 2)))
    assert not graded_low(grades((2, 2)))
    assert graded_low(grades((2, 2), (1, 2)))
    with pytest.raises(ValueError):
        graded_low([])


def test_review_sends_the_share_to_grading_and_skips_the_rest_once(project: Project, tmp_path: Path) -> None:
    items = stream(100)
    ingest_file(project, write_jsonl(tmp_path / "f.jsonl", items))
    report = review(project, seed=0)
    expected = sum(chosen_for_review(i["idempotency_key"], share=0.2, seed=0) for i in items)
    assert (report.considered, report.to_review, report.skipped) == (100, expected, 100 - expected)
    with project.store.session() as session:
        counts = feedback_counts(session, project_id=project.project_id)
        in_review = list_feedback(session, project_id=project.project_id, status="review")
        tasks = [
            get_grading_task(session, project_id=project.project_id, task_id=i.grading_task_id or 0)
            for i in in_review
        ]
    assert (counts["review"], counts["skipped"], counts["new"]) == (expected, 100 - expected, 0)
    for item, task in zip(in_review, tasks, strict=True):
        assert task is not None and task.origin == "production" and task.status == "open"
        assert task.dimension == item.prompt_meta["dimension"]  # the stream's reasons name it
        assert task.meta["prompt_meta"] == item.prompt_meta  # so simulated graders can grade it
    again = review(project, seed=0)
    assert (again.considered, again.to_review) == (0, 0)


def test_graded_low_items_become_production_comparisons_in_a_new_batch(
    project: Project, tmp_path: Path
) -> None:
    project = with_policy(project, "feedback", review_share=0.5)
    items = stream(60)
    made = routed(project, tmp_path, items)
    with project.store.session() as session:
        counts = feedback_counts(session, project_id=project.project_id)
        prompts = list_prompts(session, project_id=project.project_id)
        slots = slot_counts(session, project_id=project.project_id)
    reviewed = [i for i in items if chosen_for_review(i["idempotency_key"], share=0.5, seed=0)]
    low = [i for i in reviewed if gold_level(i["meta"], i["meta"]["dimension"], i["response"]) < 2]
    assert made > 0 and counts["routed"] == made
    assert counts["ok"] == len(reviewed) - len(low)
    assert made + counts["review"] == len(low)  # only items whose fresh sample was identical wait
    production = [p for p in prompts if p.source == "production"]
    assert len(production) == made and {p.split for p in production} == {"pool"}
    assert slots["open"] == made
    # ... and they flow into labeling: a rater's next live slot is a production comparison
    rater_id = active_rater(project, "ana")
    with project.store.session() as session:
        slot = claim_live_slot(session, project_id=project.project_id, rater_id=rater_id, swapped=False)
        assert slot is not None
        view = task_view(session, task_id=slot.task_id)
    assert view.origin == "production" and view.response_a != view.response_b
    flagged = {i["prompt"]: i["response"] for i in items}
    assert view.response_a == flagged[view.prompt]
    assert route_reviewed(project, sampler=grammar_sampler(items)) == 0  # nothing is routed twice


def test_items_graded_at_the_top_level_are_ok_and_not_routed(sqlite_project: Project, tmp_path: Path) -> None:
    project = with_policy(sqlite_project, "feedback", review_share=1.0)
    items = stream(40)
    ingest_file(project, write_jsonl(tmp_path / "f.jsonl", items))
    review(project)
    grade_open_tasks(project, active_rater(project, "grader"))
    made = route_reviewed(project, sampler=grammar_sampler(items))
    with project.store.session() as session:
        ok = list_feedback(session, project_id=project.project_id, status="ok")
    assert ok and made + len(ok) <= 40
    assert all(gold_level(i.prompt_meta or {}, i.prompt_meta["dimension"], i.response) == 2 for i in ok)


@pytest.mark.slow
def test_the_sft_policy_writes_the_stream_and_the_fresh_samples(
    sandbox_world: tuple[Project, BuildResult], tmp_path: Path
) -> None:
    """The real model path: the world's SFT policy answers the stream and samples the fresh responses
    (registered in a project of its own: the shared world is never changed)."""
    from tether.feedback.review import policy_sampler
    from tether.sandbox.feedback_stream import write_sandbox_stream
    from tether.scaffold import init_project
    from tether.store import register_artifact

    world, built = sandbox_world
    policy_dir = world.resolve(built.policy.path)
    project = with_policy(init_project(tmp_path / "p", template="sandbox"), "feedback", review_share=1.0)
    with project.store.session() as session:
        register_artifact(
            session,
            project_id=project.project_id,
            kind="policy",
            path=str(policy_dir),
            content_hash=built.policy.content_hash,
            spec_hash=project.spec_hash,
            parents=[],
            meta={},
        )
    path = tmp_path / "flagged.jsonl"
    write_sandbox_stream(
        path, project.spec.labeling, n=40, shift=False, seed=0, policy_dir=policy_dir, model_version="sft"
    )
    ingest_file(project, path)
    review(project)
    grade_open_tasks(project, active_rater(project, "grader"))
    sampler = policy_sampler(project, seed=0)
    made = route_reviewed(project, sampler=sampler)
    with project.store.session() as session:
        counts = feedback_counts(session, project_id=project.project_id)
    assert made > 0 and counts["routed"] == made and sampler.label.startswith("policy-")
