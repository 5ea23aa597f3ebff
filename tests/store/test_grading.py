"""Grading tasks and grades round trips, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tether.errors import TetherInputError
from tether.store import ensure_project, open_store
from tether.store.engine import Store
from tether.store.grading import (
    NewGradingTask,
    add_grading_tasks,
    count_open_for,
    get_grading_task,
    graders_of,
    grades_for,
    grading_summary,
    next_grading_task,
    open_grading_tasks,
    rater_grades,
    submit_grade,
)
from tether.store.raters import add_rater

H = "a" * 64


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.close()


def task(key: str, dimension: str = "helpful", origin: str = "eval", needed: int = 1) -> NewGradingTask:
    return NewGradingTask(
        source_key=key,
        origin=origin,
        dimension=dimension,
        prompt=f"prompt {key}",
        response=f"response {key}",
        raters_needed=needed,
        meta={"run": "eval-1"},
    )


def setup(store: Store) -> tuple[int, int, int]:
    with store.session() as s:
        project = ensure_project(s, name="p")
        ann = add_rater(s, project_id=project.id, name="ann", kind="human", spec_hash=H)
        bob = add_rater(s, project_id=project.id, name="bob", kind="human", spec_hash=H)
    return project.id, ann.id, bob.id


def grade(store: Store, task_id: int, rater_id: int, score: int, key: str, max_score: int = 4) -> None:
    with store.session() as s:
        submit_grade(
            s,
            task_id=task_id,
            rater_id=rater_id,
            score=score,
            max_score=max_score,
            rationale="because it says so",
            idempotency_key=key,
            spec_hash=H,
        )


def test_adding_tasks_is_idempotent_on_the_source_key_and_keeps_input_order(store: Store) -> None:
    pid, _, _ = setup(store)
    with store.session() as s:
        first = add_grading_tasks(s, project_id=pid, tasks=[task("k1"), task("k2")], spec_hash=H)
    with store.session() as s:
        again = add_grading_tasks(s, project_id=pid, tasks=[task("k3"), task("k2"), task("k1")], spec_hash=H)
        record = get_grading_task(s, project_id=pid, task_id=first[0])
    assert again[1:] == [first[1], first[0]] and again[0] not in first
    assert record is not None and record.status == "open" and record.meta == {"run": "eval-1"}
    assert record.created_at.tzinfo is not None and record.prompt == "prompt k1"


def test_a_bad_task_writes_nothing(store: Store) -> None:
    pid, _, _ = setup(store)
    with pytest.raises(TetherInputError, match=r"tasks\[1\]\.origin: 'web'"), store.session() as s:
        add_grading_tasks(s, project_id=pid, tasks=[task("ok"), task("bad", origin="web")], spec_hash=H)
    with pytest.raises(TetherInputError, match="raters_needed"), store.session() as s:
        add_grading_tasks(s, project_id=pid, tasks=[task("z", needed=0)], spec_hash=H)
    with store.session() as s:
        assert next_grading_task(s, project_id=pid, rater_id=1) is None


def test_next_task_skips_what_the_rater_graded_and_done_tasks(store: Store) -> None:
    pid, ann, bob = setup(store)
    with store.session() as s:
        t1, t2 = add_grading_tasks(s, project_id=pid, tasks=[task("k1", needed=2), task("k2")], spec_hash=H)
        assert next_grading_task(s, project_id=pid, rater_id=ann).id == t1  # type: ignore[union-attr]
    grade(store, t1, ann, 3, "a-1")
    with store.session() as s:
        assert next_grading_task(s, project_id=pid, rater_id=ann).id == t2  # type: ignore[union-attr]
        assert next_grading_task(s, project_id=pid, rater_id=bob).id == t1  # type: ignore[union-attr]
        assert get_grading_task(s, project_id=pid, task_id=t1).status == "open"  # type: ignore[union-attr]
    grade(store, t1, bob, 1, "b-1")
    with store.session() as s:
        assert get_grading_task(s, project_id=pid, task_id=t1).status == "done"  # type: ignore[union-attr]
        assert next_grading_task(s, project_id=pid, rater_id=bob).id == t2  # type: ignore[union-attr]


def test_a_retried_grade_returns_the_original_and_a_second_grade_is_refused(store: Store) -> None:
    pid, ann, _ = setup(store)
    with store.session() as s:
        t1, t2 = add_grading_tasks(s, project_id=pid, tasks=[task("k1"), task("k2")], spec_hash=H)
    grade(store, t1, ann, 3, "key")
    grade(store, t1, ann, 0, "key")  # a retry: the original stands
    with store.session() as s:
        assert [(g.score, g.max_score) for g in rater_grades(s, rater_id=ann)] == [(3, 4)]
    with pytest.raises(TetherInputError, match="already graded"):
        grade(store, t1, ann, 2, "other-key")
    with pytest.raises(TetherInputError, match="already used for grading task"):
        grade(store, t2, ann, 2, "key")
    with pytest.raises(TetherInputError, match="unknown grading task 999"):
        grade(store, 999, ann, 2, "k9")
    with pytest.raises(TetherInputError, match="outside the rubric's range 0-4"):
        grade(store, t2, ann, 5, "k5")


def test_grades_and_summary_aggregate_by_dimension_and_origin(store: Store) -> None:
    pid, ann, bob = setup(store)
    tasks = [task("h1", needed=2), task("h2"), task("s1", "safety", "production"), task("s2", "safety")]
    with store.session() as s:
        h1, h2, s1, _ = add_grading_tasks(s, project_id=pid, tasks=tasks, spec_hash=H)
    grade(store, h1, ann, 4, "1")
    grade(store, h1, bob, 2, "2")
    grade(store, h2, ann, 1, "3")
    grade(store, s1, ann, 1, "4", max_score=2)
    with store.session() as s:
        got = grades_for(s, project_id=pid, source_keys=["h1", "s2", "nope"])
        summary = grading_summary(s, project_id=pid)
        by_origin = grading_summary(s, project_id=pid, by_origin=True)
        evals = grading_summary(s, project_id=pid, origin="eval")
    assert [(g.rater_id, g.score) for g in got["h1"]] == [(ann, 4), (bob, 2)]
    assert got["s2"] == [] and "nope" not in got
    # helpful: 4/4, 2/4, 1/4 -> mean 7/12; safety: 1/2 over one grade
    assert summary == [
        {
            "dimension": "helpful",
            "origin": None,
            "tasks": 2,
            "done": 2,
            "grades": 3,
            "mean": pytest.approx(7 / 12),
        },
        {
            "dimension": "safety",
            "origin": None,
            "tasks": 2,
            "done": 1,
            "grades": 1,
            "mean": pytest.approx(0.5),
        },
    ]
    assert [(r["dimension"], r["origin"], r["tasks"], r["done"]) for r in by_origin] == [
        ("helpful", "eval", 2, 2),
        ("safety", "eval", 1, 0),
        ("safety", "production", 1, 1),
    ]
    assert by_origin[1]["mean"] is None
    assert [(r["dimension"], r["origin"], r["grades"]) for r in evals] == [
        ("helpful", "eval", 3),
        ("safety", "eval", 0),
    ]


def test_queue_helpers_filter_by_dimension_rater_and_project(store: Store) -> None:
    pid, ann, bob = setup(store)
    with store.session() as s:
        other = ensure_project(s, name="other").id
        [foreign] = add_grading_tasks(s, project_id=other, tasks=[task("k1")], spec_hash=H)
        h1, s1 = add_grading_tasks(
            s, project_id=pid, tasks=[task("h1", needed=2), task("s1", "safety")], spec_hash=H
        )
    grade(store, h1, ann, 1, "1")
    with store.session() as s:
        assert get_grading_task(s, project_id=pid, task_id=foreign) is None
        assert next_grading_task(s, project_id=pid, rater_id=bob, dimensions=["safety"]).id == s1  # type: ignore[union-attr]
        assert next_grading_task(s, project_id=pid, rater_id=bob, dimensions=[]) is None
        assert count_open_for(s, project_id=pid, rater_id=ann) == 1
        assert count_open_for(s, project_id=pid, rater_id=bob) == 2
        assert count_open_for(s, project_id=pid, rater_id=bob, dimensions=["helpful"]) == 1
        assert [t.id for t in open_grading_tasks(s, project_id=pid)] == [h1, s1]
        assert graders_of(s, task_ids=[h1, s1]) == {h1: {ann}}
