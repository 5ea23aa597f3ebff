"""Queue, calibration and submission through the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tether.errors import TetherInputError
from tether.labeling import raters as rater_ops
from tether.labeling.context import LabelingContext
from tether.labeling.importer import import_judgments
from tether.labeling.queue import QueueItem, next_item
from tether.labeling.submit import canonical, submit_judgment
from tether.project import Project
from tether.store.judgments import rater_judgments
from tether.store.raters import RaterRecord, get_rater, rater_events
from tether.store.tasks import slot_counts

Lab = tuple[Project, LabelingContext]
GOOD = "A careful reason that is long enough."


def rater(project: Project, name: str) -> RaterRecord:
    with project.store.session() as s:
        return get_rater(s, project_id=project.project_id, name=name)


def fetch(project: Project, ctx: LabelingContext, name: str) -> QueueItem | None:
    with project.store.session() as s:
        return next_item(s, ctx, rater(project, name))


def answer(
    project: Project, ctx: LabelingContext, name: str, item: QueueItem, choice: str, key: str | None = None
):  # type: ignore[no-untyped-def]
    with project.store.session() as s:
        return submit_judgment(
            s,
            ctx,
            rater(project, name),
            assignment_id=item.assignment.id,
            choice=choice,
            strength=2,
            rationale=GOOD,
            seconds=12.0,
            idempotency_key=key or f"k-{item.assignment.id}",
        )


def expert_shown(ctx: LabelingContext, item: QueueItem) -> str:
    anchor = ctx.task_anchor[item.task.task_id]
    return canonical(anchor.label, bool(item.assignment.swapped))


def calibrate(project: Project, ctx: LabelingContext, name: str, wrong: int) -> None:
    for i in range(len(ctx.calibration_keys)):
        item = fetch(project, ctx, name)
        assert item is not None and item.is_calibration
        right = expert_shown(ctx, item)
        result = answer(project, ctx, name, item, ("B" if right == "A" else "A") if i < wrong else right)
        if item.assignment.round > 1:  # later rounds show no verdict (docs/labeling.md)
            assert result.feedback is None
            continue
        assert result.feedback is not None
        assert result.feedback.expert_choice == right
        assert result.feedback.explanation


def test_passing_calibration_makes_a_rater_active_then_live_work_flows(lab: Lab) -> None:
    project, ctx = lab
    rater_ops.add_person(project, name="ana")
    assert rater(project, "ana").status == "calibrating"
    calibrate(project, ctx, "ana", wrong=5)  # 25%: at the limit, not above it
    assert rater(project, "ana").status == "active"
    item = fetch(project, ctx, "ana")
    assert item is not None and not item.is_calibration
    assert {item.left, item.right} == {item.task.response_a, item.task.response_b}
    assert fetch(project, ctx, "ana") == item  # an unanswered item is resumed, not replaced
    answer(project, ctx, "ana", item, "A")
    assert fetch(project, ctx, "ana") != item


def test_failing_twice_excludes_and_keeps_labels(lab: Lab) -> None:
    project, ctx = lab
    rater_ops.add_person(project, name="bo")
    calibrate(project, ctx, "bo", wrong=6)
    assert rater(project, "bo").status == "needs_retraining"
    assert rater(project, "bo").calibration_round == 2
    calibrate(project, ctx, "bo", wrong=10)
    bo = rater(project, "bo")
    assert bo.status == "excluded"
    assert fetch(project, ctx, "bo") is None
    with project.store.session() as s:
        assert len(rater_judgments(s, rater_id=bo.id)) == 2 * len(ctx.calibration_keys)
        reasons = [e.reason for e in rater_events(s, rater_id=bo.id)]
    assert "6 of 20" in reasons[1] and "10 of 20" in reasons[2]


def test_overlap_tasks_get_k_distinct_raters_and_never_twice(lab: Lab) -> None:
    project, ctx = lab
    for name in ("r1", "r2", "r3", "r4"):
        rater_ops.add_person(project, name=name)
        calibrate(project, ctx, name, wrong=0)
    seen: dict[str, set[int]] = {n: set() for n in ("r1", "r2", "r3", "r4")}
    busy = True
    while busy:
        busy = False
        for name in seen:
            item = fetch(project, ctx, name)
            if item is None:
                continue
            busy = True
            if item.task.kind == "compare":
                assert item.task.task_id not in seen[name]
                seen[name].add(item.task.task_id)
            answer(project, ctx, name, item, "A")
    with project.store.session() as s:
        counts = slot_counts(s, project_id=project.project_id)
    assert counts == {"open": 0, "claimed": 0, "done": 96 + 24 * 3}  # 20% of 120 overlapped x3


def test_bad_submissions_are_refused_and_write_nothing(lab: Lab) -> None:
    project, ctx = lab
    rater_ops.add_person(project, name="ana")
    rater_ops.add_person(project, name="eve")
    item = fetch(project, ctx, "ana")
    assert item is not None
    cases = [
        ("eve", item.assignment.id, "A", GOOD, "not assigned to rater 'eve'"),
        ("ana", item.assignment.id, "A", "too short", "at least 20"),
        ("ana", item.assignment.id, "A", "   ", "at least 20"),
        ("ana", item.assignment.id, "C", GOOD, "choice must be one of"),
        ("ana", 999_999, "A", GOOD, "not assigned"),
    ]
    for name, assignment_id, choice, rationale, message in cases:
        with pytest.raises(TetherInputError, match=message), project.store.session() as s:
            submit_judgment(
                s,
                ctx,
                rater(project, name),
                assignment_id=assignment_id,
                choice=choice,
                strength=2,
                rationale=rationale,
                seconds=1.0,
                idempotency_key=f"bad-{name}-{choice}",
            )
    with pytest.raises(TetherInputError, match="unknown rater 'nobody'"), project.store.session() as s:
        get_rater(s, project_id=project.project_id, name="nobody")
    with project.store.session() as s:
        assert rater_judgments(s, rater_id=rater(project, "ana").id) == []


def test_retry_with_same_key_is_idempotent_and_duplicates_are_refused(lab: Lab) -> None:
    project, ctx = lab
    rater_ops.add_person(project, name="ana")
    item = fetch(project, ctx, "ana")
    assert item is not None
    first = answer(project, ctx, "ana", item, "A", key="same")
    again = answer(project, ctx, "ana", item, "A", key="same")
    assert again.replayed and again.judgment == first.judgment
    with pytest.raises(TetherInputError, match="already judged"):
        answer(project, ctx, "ana", item, "B", key="other")
    with project.store.session() as s:
        assert len(rater_judgments(s, rater_id=rater(project, "ana").id)) == 1


def test_manual_exclude_readmit_recalibrate(lab: Lab) -> None:
    project, ctx = lab
    rater_ops.add_person(project, name="ana")
    calibrate(project, ctx, "ana", wrong=0)
    with pytest.raises(TetherInputError, match="a reason is required"):
        rater_ops.exclude(project, name="ana", reason=" ")
    assert rater_ops.exclude(project, name="ana", reason="copy-pasted rationales").status == "excluded"
    assert rater_ops.readmit(project, name="ana", reason="reviewed").status == "active"
    again = rater_ops.recalibrate(project, name="ana")
    assert (again.status, again.calibration_round) == ("calibrating", 2)
    item = fetch(project, ctx, "ana")
    assert item is not None and item.is_calibration


def test_import_is_all_or_nothing_with_line_numbers(lab: Lab, tmp_path: Path) -> None:
    project, ctx = lab
    rater_ops.add_person(project, name="ana")
    item = fetch(project, ctx, "ana")
    assert item is not None
    good = {"rater": "ana", "assignment": item.assignment.id, "choice": "A", "strength": 2, "rationale": GOOD}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({**good, "strength": "2"}),
        json.dumps({**good, "rater": "zed"}),
    ]
    path = tmp_path / "import.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(TetherInputError) as info:
        import_judgments(project, ctx, path)
    text = str(info.value)
    assert "line 2: not valid JSON" in text
    assert "line 3: 'strength' must be a int" in text
    assert "line 4: unknown rater 'zed'" in text
    assert "nothing was imported" in text
    with project.store.session() as s:
        assert rater_judgments(s, rater_id=rater(project, "ana").id) == []
    path.write_text(json.dumps(good), encoding="utf-8")
    assert import_judgments(project, ctx, path).written == 1
    assert import_judgments(project, ctx, path).replayed == 1  # re-import writes nothing new
