"""Claiming live slots: a rater's fetch takes the first open slot it may have, exactly once.

A live task gets one open slot per rater it needs when it is planned (`store.tasks.add_tasks`).
Raters claim slots with an optimistic `UPDATE … WHERE rater_id IS NULL`, so two raters fetching at
once can never take the same slot, on SQLite or PostgreSQL, and a task never gets more raters than
planned.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Select, Update, and_, bindparam, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from tether.store.models import AssignmentRow, TaskRow, utcnow
from tether.store.tasks import ASSIGNMENTS, AssignmentRecord, assignment_record

_A = ASSIGNMENTS.c


def claim_live_slot(
    session: Session, *, project_id: int, rater_id: int, swapped: bool
) -> AssignmentRecord | None:
    """Claim the first open slot, in task order, of a live task this rater has never had.

    Slots of tasks another rater already started come first, so overlapped tasks complete (and
    agreement becomes measurable) before new ones are opened. Task order gives that for free:
    every claim takes the first slot its rater may have, and slots never reopen, so a started task
    always precedes every untouched one. Slot ids follow (task, position) order (`add_tasks`
    writes them so), which lets the search stop at the first eligible slot instead of sorting all.

    The search and the claim are one `UPDATE … WHERE id = (SELECT … LIMIT 1)`: on SQLite the
    statement runs under the write lock, so concurrent raters never race for a slot; on
    PostgreSQL `SKIP LOCKED` makes each skip a slot another rater is claiming.

    The search starts at a remembered lower bound on the first open slot (`_open_floor`): on
    PostgreSQL every claimed slot leaves a dead entry at the front of the open-slot index until
    VACUUM, and scanning those on every claim made claims slow down as a batch went on.
    """
    floor = _open_floor(session, project_id)
    params = {"project_id": project_id, "rater": rater_id, "swapped": swapped, "now": utcnow()}
    for attempt in range(8):  # a slot taken between the search and the claim (PostgreSQL) is retried
        row = session.execute(_claim_slot(), {**params, "floor": floor}).first()
        if row is not None:
            return assignment_record(row)
        if session.execute(_eligible_slot(), {**params, "floor": floor}).first() is None:
            if floor == 0 or attempt:
                return None
            floor = 0  # the bound is only a hint: never report an empty queue because of it
    return None


_OPEN_FLOORS: dict[tuple[str, int], list[int]] = {}
"""(database, project) -> [a lower bound on the first open slot's id, claims since measured]."""
FLOOR_REFRESH = 64
"""Claims between measurements of the bound (each measurement scans from the index's front)."""


def _open_floor(session: Session, project_id: int) -> int:
    """A lower bound on the id of the project's first open slot.

    The true first open id never decreases: slots never reopen, and new batches get higher ids.
    A measured value stays a lower bound even while claims are in flight (an uncommitted claim
    still reads as open, so a claim that rolls back reopens a slot at or above the bound)."""
    key = (str(session.get_bind().engine.url), project_id)
    entry = _OPEN_FLOORS.get(key)
    if entry is None or entry[1] >= FLOOR_REFRESH:
        first = session.execute(_first_open_slot(), {"project_id": project_id}).scalar()
        entry = _OPEN_FLOORS[key] = [int(first or 0), 0]
    entry[1] += 1
    return entry[0]


@cache
def _first_open_slot() -> Select[Any]:
    tasks = TaskRow.__table__.c
    return (
        select(func.min(_A.id))
        .join(TaskRow.__table__, tasks.id == _A.task_id)
        .where(tasks.project_id == bindparam("project_id"), _A.status == "open", _A.rater_id.is_(None))
    )


@cache
def _eligible_slot() -> Select[Any]:
    mine = aliased(AssignmentRow.__table__)
    taken = exists().where(and_(mine.c.task_id == _A.task_id, mine.c.rater_id == bindparam("rater")))
    return (
        select(_A.id)
        .join(TaskRow.__table__, TaskRow.__table__.c.id == _A.task_id)
        .where(
            TaskRow.__table__.c.project_id == bindparam("project_id"),
            _A.status == "open",
            _A.rater_id.is_(None),
            _A.id >= bindparam("floor"),
            ~taken,
        )
        .order_by(_A.id)
        .limit(1)
    )


@cache
def _claim_slot() -> Update:
    first = _eligible_slot().with_for_update(skip_locked=True, of=AssignmentRow.__table__).scalar_subquery()
    return (
        update(ASSIGNMENTS)
        .where(_A.id == first, _A.rater_id.is_(None))
        .values(
            rater_id=bindparam("rater"),
            status="claimed",
            swapped=bindparam("swapped"),
            claimed_at=bindparam("now"),
        )
        .returning(*AssignmentRow.__table__.c)
    )
