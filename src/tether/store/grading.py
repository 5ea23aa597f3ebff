"""Repository functions for human rubric grading: grading tasks and the grades raters give them.

A grading task is one response to grade against one dimension's rubric. Tasks come from eval runs,
production traffic or red-teaming and are keyed by a caller-chosen `source_key`, so a retried
import never grades the same thing twice. A task is "done" once `raters_needed` grades are in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Float, Select, case, cast, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tether.errors import TetherInputError
from tether.store.models import GradeRow, GradingTaskRow, as_utc, utcnow

__all__ = [
    "GRADING_ORIGINS",
    "GradeRecord",
    "GradingTaskRecord",
    "NewGradingTask",
    "add_grading_tasks",
    "count_open_for",
    "get_grading_task",
    "grade_by_key",
    "graders_of",
    "grades_for",
    "grading_summary",
    "next_grading_task",
    "open_grading_tasks",
    "rater_grades",
    "submit_grade",
]

GRADING_ORIGINS = ("eval", "production", "redteam")
OPEN, DONE = "open", "done"
MAX_KEY = 200


@dataclass(frozen=True)
class NewGradingTask:
    """A response to grade against one dimension's rubric."""

    source_key: str
    """Unique per project; re-adding an existing key is a no-op that returns the same id."""
    origin: str
    """Where the response came from: "eval", "production" or "redteam"."""
    dimension: str
    """The spec dimension whose rubric the grader applies."""
    prompt: str
    """The prompt the response answers."""
    response: str
    """The response to grade."""
    raters_needed: int = 1
    """Grades needed before the task is done."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Free-form context; `meta["prompt_meta"]` carries sandbox truth (see sandbox.simulate_grading)."""
    messages: list[dict[str, str]] | None = None
    """The conversation the response answers, when it has more than one message."""


@dataclass(frozen=True)
class GradingTaskRecord:
    id: int
    source_key: str
    origin: str
    dimension: str
    prompt: str
    response: str
    raters_needed: int
    status: str
    meta: dict[str, Any]
    created_at: datetime
    messages: list[dict[str, str]] | None = None


@dataclass(frozen=True)
class GradeRecord:
    task_id: int
    rater_id: int
    score: int
    max_score: int
    rationale: str
    created_at: datetime
    idempotency_key: str = field(default="", repr=False)


def _task(row: GradingTaskRow) -> GradingTaskRecord:
    return GradingTaskRecord(
        id=row.id,
        source_key=row.source_key,
        origin=row.origin,
        dimension=row.dimension,
        prompt=row.prompt,
        response=row.response,
        raters_needed=row.raters_needed,
        status=row.status,
        meta=dict(row.meta or {}),
        created_at=as_utc(row.created_at),
        messages=list(row.messages) if row.messages else None,
    )


def _grade(row: GradeRow) -> GradeRecord:
    return GradeRecord(
        task_id=row.task_id,
        rater_id=row.rater_id,
        score=row.score,
        max_score=row.max_score,
        rationale=row.rationale,
        created_at=as_utc(row.created_at),
        idempotency_key=row.idempotency_key,
    )


def _check_task(task: NewGradingTask, index: int) -> None:
    where = f"grading tasks[{index}]"
    if not task.source_key or len(task.source_key) > MAX_KEY:
        raise TetherInputError(f"{where}.source_key must be 1-{MAX_KEY} characters")
    if task.origin not in GRADING_ORIGINS:
        raise TetherInputError(f"{where}.origin: '{task.origin}' is not one of {', '.join(GRADING_ORIGINS)}")
    if not task.dimension or len(task.dimension) > 50:
        raise TetherInputError(f"{where}.dimension must be 1-50 characters")
    if not task.prompt.strip() or not task.response.strip():
        raise TetherInputError(f"{where}: prompt and response must not be empty")
    if task.raters_needed < 1:
        raise TetherInputError(f"{where}.raters_needed must be at least 1, got {task.raters_needed}")


def _ids_by_key(session: Session, project_id: int, keys: Sequence[str]) -> dict[str, int]:
    if not keys:
        return {}
    rows = session.execute(
        select(GradingTaskRow.source_key, GradingTaskRow.id).where(
            GradingTaskRow.project_id == project_id, GradingTaskRow.source_key.in_(list(keys))
        )
    ).all()
    return {key: task_id for key, task_id in rows}


def add_grading_tasks(
    session: Session, *, project_id: int, tasks: Sequence[NewGradingTask], spec_hash: str
) -> list[int]:
    """Add grading tasks; returns their ids in input order. Known source keys are not re-added.

    Every task is validated before anything is written. A concurrent writer adding the same key
    is absorbed: the insert runs in a savepoint and, on a clash, the existing ids are read back.
    """
    for index, task in enumerate(tasks):
        _check_task(task, index)
    keys = list(dict.fromkeys(t.source_key for t in tasks))
    ids = _ids_by_key(session, project_id, keys)
    fresh = {t.source_key: t for t in tasks if t.source_key not in ids}
    if fresh:
        now = utcnow()
        rows = [
            GradingTaskRow(
                project_id=project_id,
                source_key=t.source_key,
                origin=t.origin,
                dimension=t.dimension,
                prompt=t.prompt,
                messages=t.messages,
                response=t.response,
                raters_needed=t.raters_needed,
                status=OPEN,
                meta=dict(t.meta),
                spec_hash=spec_hash,
                created_at=now,
            )
            for t in fresh.values()
        ]
        try:
            with session.begin_nested():
                session.add_all(rows)
        except IntegrityError:
            pass  # another writer added some of these keys first; read every id back below
        ids = _ids_by_key(session, project_id, keys)
    return [ids[t.source_key] for t in tasks]


def get_grading_task(session: Session, *, project_id: int, task_id: int) -> GradingTaskRecord | None:
    """A task of this project by id; None when it does not exist or belongs to another project."""
    row = session.get(GradingTaskRow, task_id)
    return None if row is None or row.project_id != project_id else _task(row)


def _open_for(project_id: int, rater_id: int, dimensions: Sequence[str] | None) -> Select[Any]:
    graded = select(GradeRow.task_id).where(GradeRow.rater_id == rater_id)
    query = select(GradingTaskRow).where(
        GradingTaskRow.project_id == project_id,
        GradingTaskRow.status == OPEN,
        GradingTaskRow.id.not_in(graded),
    )
    if dimensions is not None:
        query = query.where(GradingTaskRow.dimension.in_(list(dimensions)))
    return query


def next_grading_task(
    session: Session, *, project_id: int, rater_id: int, dimensions: Sequence[str] | None = None
) -> GradingTaskRecord | None:
    """The oldest open task of the project that this rater has not graded yet.

    `dimensions` limits it to tasks of these dimensions (the web app passes the spec's, so a task
    naming a dimension the spec lost waits instead of blocking the queue).
    """
    query = _open_for(project_id, rater_id, dimensions).order_by(GradingTaskRow.id).limit(1)
    row = session.scalars(query).first()
    return None if row is None else _task(row)


def count_open_for(
    session: Session, *, project_id: int, rater_id: int, dimensions: Sequence[str] | None = None
) -> int:
    """How many open tasks this rater could still grade (the link on the rater's pages)."""
    query = _open_for(project_id, rater_id, dimensions).with_only_columns(func.count())
    return int(session.scalar(query) or 0)


def open_grading_tasks(session: Session, *, project_id: int) -> list[GradingTaskRecord]:
    """Every open task of the project, oldest first."""
    rows = session.scalars(
        select(GradingTaskRow)
        .where(GradingTaskRow.project_id == project_id, GradingTaskRow.status == OPEN)
        .order_by(GradingTaskRow.id)
    )
    return [_task(r) for r in rows]


def graders_of(session: Session, *, task_ids: Sequence[int]) -> dict[int, set[int]]:
    """Task id -> ids of the raters who graded it (tasks without grades are left out)."""
    out: dict[int, set[int]] = {}
    if not task_ids:
        return out
    rows = session.execute(
        select(GradeRow.task_id, GradeRow.rater_id).where(GradeRow.task_id.in_(list(task_ids)))
    )
    for task_id, rater_id in rows:
        out.setdefault(task_id, set()).add(rater_id)
    return out


def grade_by_key(session: Session, *, rater_id: int, idempotency_key: str) -> GradeRecord | None:
    row = session.scalars(
        select(GradeRow).where(GradeRow.rater_id == rater_id, GradeRow.idempotency_key == idempotency_key)
    ).first()
    return None if row is None else _grade(row)


def _check_grade(score: int, max_score: int, rationale: str, idempotency_key: str) -> None:
    if max_score < 1 or not 0 <= score <= max_score:
        raise TetherInputError(f"score {score} is outside the rubric's range 0-{max_score}")
    if not rationale.strip():
        raise TetherInputError("a grade needs a rationale")
    if not idempotency_key or len(idempotency_key) > MAX_KEY:
        raise TetherInputError(f"the idempotency key must be 1-{MAX_KEY} characters")


def submit_grade(
    session: Session,
    *,
    task_id: int,
    rater_id: int,
    score: int,
    max_score: int,
    rationale: str,
    idempotency_key: str,
    spec_hash: str,
) -> GradeRecord:
    """Record a rater's grade; a retry with the same (rater, key) returns the original grade.

    Checking the score against the dimension's rubric levels is the caller's job (it has the
    spec); here it only has to lie in 0..max_score. A rater grades a task once. The task row is
    locked so that concurrent grades count correctly towards `raters_needed`.
    """
    _check_grade(score, max_score, rationale, idempotency_key)
    earlier = grade_by_key(session, rater_id=rater_id, idempotency_key=idempotency_key)
    if earlier is not None:
        if earlier.task_id != task_id:
            raise TetherInputError(
                f"idempotency key already used for grading task {earlier.task_id}; use a new key"
            )
        return earlier
    task = session.get(GradingTaskRow, task_id, with_for_update=True)
    if task is None:
        raise TetherInputError(f"unknown grading task {task_id}")
    if session.scalar(select(GradeRow.id).where(GradeRow.task_id == task_id, GradeRow.rater_id == rater_id)):
        raise TetherInputError(f"grading task {task_id} is already graded by this rater")
    row = GradeRow(
        task_id=task_id,
        rater_id=rater_id,
        score=score,
        max_score=max_score,
        rationale=rationale,
        idempotency_key=idempotency_key,
        spec_hash=spec_hash,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # A concurrent retry of this very submission won the race: answer as the retry would.
        again = grade_by_key(session, rater_id=rater_id, idempotency_key=idempotency_key)
        if again is not None and again.task_id == task_id:
            return again
        raise TetherInputError(f"grading task {task_id} is already graded by this rater") from None
    count = session.scalar(select(func.count()).where(GradeRow.task_id == task_id)) or 0
    if count >= task.raters_needed and task.status != DONE:
        task.status = DONE
        session.flush()
    return _grade(row)


def grades_for(
    session: Session, *, project_id: int, source_keys: Sequence[str]
) -> dict[str, list[GradeRecord]]:
    """The grades of each known task key, oldest first; a known key without grades maps to []."""
    keys = list(dict.fromkeys(source_keys))
    if not keys:
        return {}
    out: dict[str, list[GradeRecord]] = {key: [] for key in _ids_by_key(session, project_id, keys)}
    rows = session.execute(
        select(GradingTaskRow.source_key, GradeRow)
        .join(GradeRow, GradeRow.task_id == GradingTaskRow.id)
        .where(GradingTaskRow.project_id == project_id, GradingTaskRow.source_key.in_(keys))
        .order_by(GradeRow.id)
    ).all()
    for key, grade in rows:
        out[key].append(_grade(grade))
    return out


def rater_grades(session: Session, *, rater_id: int) -> list[GradeRecord]:
    """A rater's own grades, oldest first."""
    rows = session.scalars(select(GradeRow).where(GradeRow.rater_id == rater_id).order_by(GradeRow.id))
    return [_grade(r) for r in rows]


def grading_summary(
    session: Session, *, project_id: int, origin: str | None = None, by_origin: bool = False
) -> list[dict[str, Any]]:
    """Per dimension (and per origin with `by_origin`): tasks, done tasks, grades, mean score/max.

    `mean` is the mean over grades of score / max_score, in [0, 1]; None before any grade.
    Rows are sorted by dimension, then origin; `origin` is None in rows that span origins.
    """
    t, g = GradingTaskRow, GradeRow
    where = [t.project_id == project_id] + ([t.origin == origin] if origin is not None else [])
    group = [t.dimension, t.origin] if by_origin else [t.dimension]
    tasks = session.execute(
        select(*group, func.count(), func.sum(case((t.status == DONE, 1), else_=0)))
        .where(*where)
        .group_by(*group)
    ).all()
    ratio = cast(g.score, Float) / cast(g.max_score, Float)
    grades = session.execute(
        select(*group, func.count(), func.avg(ratio))
        .join(g, g.task_id == t.id)
        .where(*where)
        .group_by(*group)
    ).all()
    graded = {tuple(r[: len(group)]): (int(r[-2]), float(r[-1])) for r in grades}
    out = []
    for row in tasks:
        key = tuple(row[: len(group)])
        n_grades, mean = graded.get(key, (0, None))
        out.append(
            {
                "dimension": key[0],
                "origin": key[1] if by_origin else origin,
                "tasks": int(row[-2]),
                "done": int(row[-1] or 0),
                "grades": n_grades,
                "mean": mean,
            }
        )
    return sorted(out, key=lambda r: (r["dimension"], r["origin"] or ""))
