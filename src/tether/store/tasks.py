"""Repository functions for responses, batches, comparison tasks and their assignment slots.

A live task gets one open slot per rater it needs when it is planned; `store.slots` claims them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, cast

from sqlalchemy import Select, Table, Update, bindparam, case, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from tether.errors import TetherInputError
from tether.store.models import AssignmentRow, BatchRow, PromptRow, ResponseRow, TaskRow, utcnow

LIVE = "compare"
ANCHOR = "anchor"


@dataclass(frozen=True)
class NewTask:
    prompt_id: int
    response_a_id: int
    response_b_id: int
    kind: str = LIVE
    anchor_key: str | None = None
    raters_needed: int = 1
    origin: str = "plan"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AssignmentRecord:
    id: int
    task_id: int
    rater_id: int | None
    purpose: str
    round: int
    position: int
    swapped: bool | None
    status: str


@dataclass(frozen=True)
class TaskView:
    """What a rater needs to judge a task, in the task's canonical A/B order."""

    task_id: int
    kind: str
    anchor_key: str | None
    prompt_id: int
    prompt: str
    prompt_meta: dict[str, Any]
    dimension: str
    stratum: str
    response_a: str
    response_b: str
    origin: str
    meta: dict[str, Any]
    messages: list[dict[str, str]] | None = None
    """The prompt's conversation when it has more than one message; ``prompt`` is its last user turn."""


def assignment_record(row: Any) -> AssignmentRecord:
    """From an ORM row or a Core row of the assignments table (same attribute names)."""
    return AssignmentRecord(
        row.id, row.task_id, row.rater_id, row.purpose, row.round, row.position, row.swapped, row.status
    )


def add_responses(
    session: Session, *, project_id: int, items: Sequence[tuple[int, str, str]], spec_hash: str
) -> list[int]:
    """Store (prompt id, text, source) responses; returns their ids in order."""
    if not items:
        return []
    now = utcnow()
    rows = [
        {
            "project_id": project_id,
            "prompt_id": p,
            "text": t,
            "source": s,
            "spec_hash": spec_hash,
            "created_at": now,
        }
        for p, t, s in items
    ]
    ids = session.scalars(
        insert(ResponseRow).returning(ResponseRow.id, sort_by_parameter_order=True), rows
    ).all()
    return list(ids)


def create_batch(
    session: Session, *, project_id: int, name: str, meta: dict[str, Any], spec_hash: str
) -> int:
    row = BatchRow(project_id=project_id, name=name, meta=meta, spec_hash=spec_hash, created_at=utcnow())
    session.add(row)
    session.flush()
    return row.id


def add_tasks(
    session: Session, *, project_id: int, batch_id: int | None, tasks: Sequence[NewTask], spec_hash: str
) -> list[int]:
    """Create tasks and, for live ones, one open slot per rater needed."""
    if not tasks:
        return []
    if any(t.response_a_id == t.response_b_id for t in tasks):
        raise TetherInputError("a comparison needs two different responses")
    now = utcnow()
    rows = [
        {
            "project_id": project_id,
            "batch_id": batch_id,
            "prompt_id": t.prompt_id,
            "response_a_id": t.response_a_id,
            "response_b_id": t.response_b_id,
            "kind": t.kind,
            "anchor_key": t.anchor_key,
            "raters_needed": t.raters_needed,
            "origin": t.origin,
            "meta": t.meta,
            "spec_hash": spec_hash,
            "created_at": now,
        }
        for t in tasks
    ]
    ids = list(
        session.scalars(insert(TaskRow).returning(TaskRow.id, sort_by_parameter_order=True), rows).all()
    )
    slots = [
        {
            "task_id": tid,
            "rater_id": None,
            "purpose": "live",
            "round": 0,
            "position": slot,
            "status": "open",
            "created_at": now,
        }
        for tid, task in zip(ids, tasks, strict=True)
        if task.kind == LIVE
        for slot in range(task.raters_needed)
    ]
    if slots:
        session.execute(insert(AssignmentRow), slots)
    return ids


def anchor_task_ids(session: Session, *, project_id: int) -> dict[str, int]:
    """Anchor key -> task id of the newest task for that anchor."""
    rows = session.execute(
        select(TaskRow.anchor_key, func.max(TaskRow.id))
        .where(TaskRow.project_id == project_id, TaskRow.kind == ANCHOR)
        .group_by(TaskRow.anchor_key)
    ).all()
    return {key: tid for key, tid in rows if key is not None}


# The statements the API runs on every request are built once (`@cache`): building a SQLAlchemy
# statement costs more than running it on an indexed lookup, and Core rows skip the identity map.

ASSIGNMENTS = cast(Table, AssignmentRow.__table__)
"""The assignments table, for Core statements (`store.slots` claims through it too)."""
_A = ASSIGNMENTS.c


@cache
def _open_assignment() -> Select[Any]:
    return (
        select(*AssignmentRow.__table__.c)
        .where(_A.rater_id == bindparam("rater_id"), _A.status == "claimed")
        .order_by(_A.id)
        .limit(1)
    )


def open_assignment(session: Session, *, rater_id: int) -> AssignmentRecord | None:
    """The rater's claimed, unanswered assignment, if any (a rater resumes where they left off)."""
    row = session.execute(_open_assignment(), {"rater_id": rater_id}).first()
    return None if row is None else assignment_record(row)


def create_assignment(
    session: Session, *, task_id: int, rater_id: int, purpose: str, round_: int, swapped: bool
) -> AssignmentRecord:
    """A claimed assignment for one rater (calibration and hidden anchors)."""
    row = AssignmentRow(
        task_id=task_id,
        rater_id=rater_id,
        purpose=purpose,
        round=round_,
        position=0,
        swapped=swapped,
        status="claimed",
        claimed_at=utcnow(),
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return assignment_record(row)


@cache
def _assignment_by_id() -> Select[Any]:
    return select(*AssignmentRow.__table__.c).where(_A.id == bindparam("assignment_id"))


@cache
def _complete() -> Update:
    return update(ASSIGNMENTS).where(_A.id == bindparam("assignment_id")).values(status="done")


def get_assignment(session: Session, *, assignment_id: int) -> AssignmentRecord | None:
    row = session.execute(_assignment_by_id(), {"assignment_id": assignment_id}).first()
    return None if row is None else assignment_record(row)


def complete_assignment(session: Session, *, assignment_id: int) -> None:
    session.execute(_complete(), {"assignment_id": assignment_id})


def rater_assignments(
    session: Session, *, rater_id: int, purpose: str | None = None
) -> list[AssignmentRecord]:
    query = select(AssignmentRow).where(AssignmentRow.rater_id == rater_id)
    if purpose is not None:
        query = query.where(AssignmentRow.purpose == purpose)
    return [assignment_record(r) for r in session.scalars(query.order_by(AssignmentRow.id))]


@cache
def _task_view() -> Select[Any]:
    task, prompt = TaskRow.__table__.c, PromptRow.__table__.c
    ra, rb = aliased(ResponseRow.__table__), aliased(ResponseRow.__table__)
    return (  # one query, not four: this runs on every fetch
        select(
            task.id,
            task.kind,
            task.anchor_key,
            task.origin,
            task.meta,
            prompt.id.label("prompt_id"),
            prompt.text.label("prompt"),
            prompt.messages.label("messages"),
            prompt.meta.label("prompt_meta"),
            prompt.dimension,
            prompt.stratum,
            ra.c.text.label("response_a"),
            rb.c.text.label("response_b"),
        )
        .join(PromptRow.__table__, prompt.id == task.prompt_id)
        .join(ra, ra.c.id == task.response_a_id)
        .join(rb, rb.c.id == task.response_b_id)
        .where(task.id == bindparam("task_id"))
    )


def task_view(session: Session, *, task_id: int) -> TaskView:
    found = session.execute(_task_view(), {"task_id": task_id}).first()
    if found is None:
        raise TetherInputError(f"unknown task {task_id}")
    return TaskView(
        task_id=found.id,
        kind=found.kind,
        anchor_key=found.anchor_key,
        prompt_id=found.prompt_id,
        prompt=found.prompt,
        prompt_meta=dict(found.prompt_meta or {}),
        dimension=found.dimension,
        stratum=found.stratum,
        response_a=found.response_a,
        response_b=found.response_b,
        origin=found.origin,
        meta=dict(found.meta or {}),
        messages=list(found.messages) if found.messages else None,
    )


def used_prompt_ids(session: Session, *, project_id: int) -> set[int]:
    """Prompts that already have a live task."""
    rows = session.scalars(
        select(TaskRow.prompt_id).where(TaskRow.project_id == project_id, TaskRow.kind == LIVE)
    )
    return set(rows.all())


def slot_counts(session: Session, *, project_id: int) -> dict[str, int]:
    """Live slots by status: open (unclaimed), claimed (in progress) and done."""
    rows = session.execute(
        select(AssignmentRow.status, func.count())
        .join(TaskRow, TaskRow.id == AssignmentRow.task_id)
        .where(TaskRow.project_id == project_id, AssignmentRow.purpose == "live")
        .group_by(AssignmentRow.status)
    ).all()
    counts = {"open": 0, "claimed": 0, "done": 0}
    counts.update({status: n for status, n in rows})
    return counts


def batch_sources(session: Session, *, batch_ids: Sequence[int]) -> set[str]:
    """The response sources (checkpoint artifact ids or paths) recorded on these batches."""
    rows = session.scalars(select(BatchRow.meta).where(BatchRow.id.in_(list(batch_ids)))).all()
    return {str(source) for meta in rows for source in (meta or {}).get("sources", [])}


def progress_by_cell(session: Session, *, project_id: int) -> list[tuple[str, str, int, int]]:
    """(dimension, stratum, done slots, all slots) of live work, for the admin dashboard."""
    done = func.sum(case((AssignmentRow.status == "done", 1), else_=0))
    rows = session.execute(
        select(PromptRow.dimension, PromptRow.stratum, done, func.count())
        .join(TaskRow, TaskRow.id == AssignmentRow.task_id)
        .join(PromptRow, PromptRow.id == TaskRow.prompt_id)
        .where(TaskRow.project_id == project_id, AssignmentRow.purpose == "live")
        .group_by(PromptRow.dimension, PromptRow.stratum)
        .order_by(PromptRow.dimension, PromptRow.stratum)
    ).all()
    return [(d, s, int(n_done or 0), int(n)) for d, s, n_done, n in rows]


def tasks_by_origin(session: Session, *, project_id: int) -> dict[str, int]:
    """Comparison tasks (anchors left out) by origin: plan, redteam, production..."""
    rows = session.execute(
        select(TaskRow.origin, func.count())
        .where(TaskRow.project_id == project_id, TaskRow.anchor_key.is_(None))
        .group_by(TaskRow.origin)
    )
    return {str(origin): int(n) for origin, n in rows}
