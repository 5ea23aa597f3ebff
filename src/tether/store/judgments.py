"""Repository functions for judgments: idempotent writes and columnar reads for reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Insert, Select, Table, bindparam, func, insert, select
from sqlalchemy.orm import Session

from tether.store.models import AssignmentRow, JudgmentRow, PromptRow, ResponseRow, TaskRow, as_utc, utcnow


@dataclass(frozen=True)
class JudgmentRecord:
    id: int
    assignment_id: int
    task_id: int
    rater_id: int
    choice: str
    shown_choice: str
    swapped: bool
    strength: int
    rationale: str
    seconds: float
    idempotency_key: str
    correct: bool | None
    created_at: datetime


@dataclass(frozen=True)
class NewJudgment:
    assignment_id: int
    task_id: int
    rater_id: int
    choice: str
    shown_choice: str
    swapped: bool
    strength: int
    rationale: str
    seconds: float
    idempotency_key: str
    correct: bool | None
    spec_hash: str


def _record(row: Any) -> JudgmentRecord:
    """From an ORM row or a Core row of the judgments table (same attribute names)."""
    return JudgmentRecord(
        id=row.id,
        assignment_id=row.assignment_id,
        task_id=row.task_id,
        rater_id=row.rater_id,
        choice=row.choice,
        shown_choice=row.shown_choice,
        swapped=row.swapped,
        strength=row.strength,
        rationale=row.rationale,
        seconds=row.seconds,
        idempotency_key=row.idempotency_key,
        correct=row.correct,
        created_at=as_utc(row.created_at),
    )


# The statements the API runs on every request are built once: building a SQLAlchemy statement
# costs more than running it on an indexed lookup, and Core rows skip the ORM's identity map.


@cache
def _select_where(*columns: str) -> Select[Any]:
    table = JudgmentRow.__table__
    return select(*table.c).where(*(table.c[name] == bindparam(name) for name in columns))


@cache
def _insert() -> Insert:
    table = cast(Table, JudgmentRow.__table__)
    return insert(table).returning(table.c.id)


@cache
def _count_for_rater() -> Select[Any]:
    table = JudgmentRow.__table__
    return select(func.count()).select_from(table).where(table.c.rater_id == bindparam("rater_id"))


def judgment_by_key(session: Session, *, rater_id: int, idempotency_key: str) -> JudgmentRecord | None:
    params = {"rater_id": rater_id, "idempotency_key": idempotency_key}
    row = session.execute(_select_where("rater_id", "idempotency_key"), params).first()
    return None if row is None else _record(row)


def judgment_for_assignment(session: Session, *, assignment_id: int) -> JudgmentRecord | None:
    row = session.execute(_select_where("assignment_id"), {"assignment_id": assignment_id}).first()
    return None if row is None else _record(row)


def add_judgment(session: Session, *, judgment: NewJudgment) -> JudgmentRecord:
    values = {**asdict(judgment), "created_at": utcnow()}
    new_id = session.execute(_insert(), values).scalar_one()
    values.pop("spec_hash")
    return JudgmentRecord(id=new_id, **values)


def rater_judgments(
    session: Session, *, rater_id: int, purpose: str | None = None, after: datetime | None = None
) -> list[JudgmentRecord]:
    """A rater's judgments in order, optionally only those of assignments with `purpose`, and only
    those made after `after`."""
    query = select(JudgmentRow).where(JudgmentRow.rater_id == rater_id)
    if after is not None:
        query = query.where(JudgmentRow.created_at > after)
    if purpose is not None:
        query = query.join(AssignmentRow, AssignmentRow.id == JudgmentRow.assignment_id).where(
            AssignmentRow.purpose == purpose
        )
    return [_record(r) for r in session.scalars(query.order_by(JudgmentRow.id))]


def round_judgments(session: Session, *, rater_id: int, round_: int) -> list[JudgmentRecord]:
    """A rater's judgments of calibration round `round_`."""
    query = (
        select(JudgmentRow)
        .join(AssignmentRow, AssignmentRow.id == JudgmentRow.assignment_id)
        .where(
            JudgmentRow.rater_id == rater_id,
            AssignmentRow.purpose == "calibration",
            AssignmentRow.round == round_,
        )
        .order_by(JudgmentRow.id)
    )
    return [_record(r) for r in session.scalars(query)]


@dataclass(frozen=True)
class JudgmentFacts:
    """One judgment with what the rater report needs, flat, for columnar analysis."""

    rater_id: int
    task_id: int
    task_kind: str
    raters_needed: int
    dimension: str
    stratum: str
    choice: str
    shown_choice: str
    strength: int
    seconds: float
    rationale: str
    correct: bool | None
    len_a: int
    len_b: int
    purpose: str


def judgment_facts(session: Session, *, project_id: int) -> list[JudgmentFacts]:
    """Every judgment of the project joined with its task, prompt and response lengths."""
    a = ResponseRow.__table__.alias("ra")
    b = ResponseRow.__table__.alias("rb")
    query = (
        select(
            JudgmentRow.rater_id,
            JudgmentRow.task_id,
            TaskRow.kind,
            TaskRow.raters_needed,
            PromptRow.dimension,
            PromptRow.stratum,
            JudgmentRow.choice,
            JudgmentRow.shown_choice,
            JudgmentRow.strength,
            JudgmentRow.seconds,
            JudgmentRow.rationale,
            JudgmentRow.correct,
            a.c.text,
            b.c.text,
            AssignmentRow.purpose,
        )
        .join(AssignmentRow, AssignmentRow.id == JudgmentRow.assignment_id)
        .join(TaskRow, TaskRow.id == JudgmentRow.task_id)
        .join(PromptRow, PromptRow.id == TaskRow.prompt_id)
        .join(a, a.c.id == TaskRow.response_a_id)
        .join(b, b.c.id == TaskRow.response_b_id)
        .where(TaskRow.project_id == project_id)
        .order_by(JudgmentRow.id)
    )
    return [
        JudgmentFacts(
            rater_id=r[0],
            task_id=r[1],
            task_kind=r[2],
            raters_needed=r[3],
            dimension=r[4],
            stratum=r[5],
            choice=r[6],
            shown_choice=r[7],
            strength=r[8],
            seconds=r[9],
            rationale=r[10],
            correct=r[11],
            len_a=len(r[12]),
            len_b=len(r[13]),
            purpose=r[14],
        )
        for r in session.execute(query)
    ]


def count_judgments(session: Session, *, rater_id: int) -> int:
    return int(session.execute(_count_for_rater(), {"rater_id": rater_id}).scalar() or 0)


def count_judgments_since(session: Session, *, rater_id: int, since: datetime) -> int:
    """Judgments a rater made since `since` (the web app's 'done today' counter)."""
    query = select(func.count()).where(JudgmentRow.rater_id == rater_id, JudgmentRow.created_at >= since)
    return int(session.scalar(query) or 0)


def counterfactual_votes(
    session: Session, *, project_id: int, prefix: str
) -> list[tuple[str, str, str, str]]:
    """(rater name, task origin, edited side "a" or "b", canonical choice) of every judgment on a
    task whose origin starts with ``prefix`` (the loop's counterfactual pairs, `probe:<name>`)."""
    from tether.store.models import RaterRow

    query = (
        select(RaterRow.name, TaskRow.origin, TaskRow.meta, JudgmentRow.choice)
        .join(TaskRow, TaskRow.id == JudgmentRow.task_id)
        .join(RaterRow, RaterRow.id == JudgmentRow.rater_id)
        .where(TaskRow.project_id == project_id, TaskRow.origin.startswith(prefix))
        .order_by(JudgmentRow.id)
    )
    return [
        (name, origin, str((meta or {}).get("edited_side", "b")), choice)
        for name, origin, meta, choice in session.execute(query)
    ]
