"""Repository functions for raters and their status history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tether.errors import TetherInputError
from tether.store.models import (
    JudgmentRow,
    RaterEventRow,
    RaterRow,
    RecalibrationRow,
    TaskRow,
    as_utc,
    utcnow,
)

RATER_KINDS = ("human", "simulated", "ai", "import")
RATER_STATUSES = ("calibrating", "active", "needs_retraining", "excluded")


@dataclass(frozen=True)
class RaterRecord:
    id: int
    project_id: int
    name: str
    kind: str
    status: str
    is_admin: bool
    calibration_round: int
    profile: dict[str, Any]
    spec_hash: str
    created_at: datetime
    token_hash: str | None = field(default=None, repr=False)
    readmitted_at: datetime | None = None
    """When the rater last became active; the hidden-anchor window counts judgments after it."""


@dataclass(frozen=True)
class RaterEventRecord:
    rater_id: int
    from_status: str | None
    to_status: str
    reason: str
    spec_hash: str
    created_at: datetime


def _record(row: Any) -> RaterRecord:
    """From an ORM row or a Core row of the raters table (same attribute names)."""
    return RaterRecord(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        kind=row.kind,
        status=row.status,
        is_admin=row.is_admin,
        calibration_round=row.calibration_round,
        profile=dict(row.profile or {}),
        spec_hash=row.spec_hash,
        created_at=as_utc(row.created_at),
        token_hash=row.token_hash,
        readmitted_at=None if row.readmitted_at is None else as_utc(row.readmitted_at),
    )


def add_rater(
    session: Session,
    *,
    project_id: int,
    name: str,
    kind: str,
    spec_hash: str,
    is_admin: bool = False,
    token_hash: str | None = None,
    profile: dict[str, Any] | None = None,
) -> RaterRecord:
    """Add a rater in status `calibrating` (admins are `active`: they do not label)."""
    if kind not in RATER_KINDS:
        raise TetherInputError(f"rater kind '{kind}' is not one of {', '.join(RATER_KINDS)}")
    if not name.strip() or len(name) > 100:
        raise TetherInputError("rater name must be 1-100 characters")
    if session.scalars(
        select(RaterRow.id).where(RaterRow.project_id == project_id, RaterRow.name == name)
    ).first():
        raise TetherInputError(f"rater '{name}' already exists in this project")
    status = "active" if is_admin else "calibrating"
    row = RaterRow(
        project_id=project_id,
        name=name,
        kind=kind,
        status=status,
        is_admin=is_admin,
        token_hash=token_hash,
        calibration_round=1,
        profile=profile or {},
        spec_hash=spec_hash,
        created_at=utcnow(),
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise TetherInputError(f"rater '{name}' already exists in this project") from None
    reason = "admin account" if is_admin else "new rater: calibration on the expert anchors comes first"
    session.add(
        RaterEventRow(
            rater_id=row.id,
            from_status=None,
            to_status=status,
            reason=reason,
            spec_hash=spec_hash,
            created_at=utcnow(),
        )
    )
    return _record(row)


def get_rater(
    session: Session, *, project_id: int, name: str | None = None, rater_id: int | None = None
) -> RaterRecord:
    """A rater by name or id; unknown raters are a clear input error."""
    query = select(RaterRow).where(RaterRow.project_id == project_id)
    if rater_id is not None:
        query = query.where(RaterRow.id == rater_id)
    elif name is not None:
        query = query.where(RaterRow.name == name)
    else:
        raise TetherInputError("a rater needs a name or an id")
    row = session.scalars(query).one_or_none()
    if row is None:
        raise TetherInputError(f"unknown rater '{name if name is not None else rater_id}'")
    return _record(row)


@cache
def _by_token() -> Select[Any]:
    # Built once: every API request runs this, and building a statement costs more than running it.
    table = RaterRow.__table__
    return select(*table.c).where(table.c.token_hash == bindparam("token_hash"))


def find_rater_by_token(session: Session, *, token_hash: str) -> RaterRecord | None:
    row = session.execute(_by_token(), {"token_hash": token_hash}).first()
    return None if row is None else _record(row)


def list_raters(session: Session, *, project_id: int) -> list[RaterRecord]:
    rows = session.scalars(select(RaterRow).where(RaterRow.project_id == project_id).order_by(RaterRow.id))
    return [_record(r) for r in rows]


def set_rater_status(
    session: Session,
    *,
    rater_id: int,
    status: str,
    reason: str,
    spec_hash: str,
    calibration_round: int | None = None,
) -> RaterRecord:
    """Change a rater's status and record why; the history is never rewritten."""
    if status not in RATER_STATUSES:
        raise TetherInputError(f"rater status '{status}' is not one of {', '.join(RATER_STATUSES)}")
    if not reason.strip():
        raise TetherInputError("a status change needs a reason")
    row = session.get(RaterRow, rater_id, with_for_update=True)
    if row is None:
        raise TetherInputError(f"unknown rater id {rater_id}")
    session.add(
        RaterEventRow(
            rater_id=rater_id,
            from_status=row.status,
            to_status=status,
            reason=reason,
            spec_hash=spec_hash,
            created_at=utcnow(),
        )
    )
    if status == "active" and row.status != "active":
        row.readmitted_at = utcnow()
    row.status = status
    if calibration_round is not None:
        row.calibration_round = calibration_round
    session.flush()
    return _record(row)


def rater_events(session: Session, *, rater_id: int) -> list[RaterEventRecord]:
    rows = session.scalars(
        select(RaterEventRow).where(RaterEventRow.rater_id == rater_id).order_by(RaterEventRow.id)
    )
    return [
        RaterEventRecord(r.rater_id, r.from_status, r.to_status, r.reason, r.spec_hash, as_utc(r.created_at))
        for r in rows
    ]


# ---- recalibration cycles: failed hidden-anchor windows and the labels they hold out ----------


@dataclass(frozen=True)
class RecalibrationRecord:
    """One failed hidden-anchor window; see `RecalibrationRow`."""

    id: int
    rater_id: int
    first_judgment_id: int
    failed_judgment_id: int
    through_judgment_id: int | None
    outcome: str
    released_at: datetime | None
    created_at: datetime


def add_recalibration(
    session: Session, *, rater_id: int, first_judgment_id: int, failed_judgment_id: int, outcome: str
) -> RecalibrationRecord:
    """Record a failed window; the rater's labels from `first_judgment_id` on are held from now."""
    row = RecalibrationRow(
        rater_id=rater_id,
        first_judgment_id=first_judgment_id,
        failed_judgment_id=failed_judgment_id,
        outcome=outcome,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return _recalibration(row)


def _recalibration(r: RecalibrationRow) -> RecalibrationRecord:
    return RecalibrationRecord(
        r.id,
        r.rater_id,
        r.first_judgment_id,
        r.failed_judgment_id,
        r.through_judgment_id,
        r.outcome,
        None if r.released_at is None else as_utc(r.released_at),
        as_utc(r.created_at),
    )


def rater_recalibrations(session: Session, *, rater_id: int) -> list[RecalibrationRecord]:
    """The rater's failed hidden-anchor windows, oldest first."""
    rows = session.scalars(
        select(RecalibrationRow).where(RecalibrationRow.rater_id == rater_id).order_by(RecalibrationRow.id)
    )
    return [_recalibration(r) for r in rows]


def close_recalibrations(session: Session, *, rater_id: int, release: bool) -> None:
    """At readmission: end each open hold at the rater's latest judgment; `release` (the rater
    passed a calibration round) also lets every held label of the rater back into training data."""
    latest = session.scalar(select(func.max(JudgmentRow.id)).where(JudgmentRow.rater_id == rater_id))
    row = RecalibrationRow
    session.execute(
        update(row)
        .where(row.rater_id == rater_id, row.through_judgment_id.is_(None))
        .values(through_judgment_id=latest if latest is not None else 0)
    )
    if release:
        session.execute(
            update(row)
            .where(row.rater_id == rater_id, row.released_at.is_(None))
            .values(released_at=utcnow())
        )


def held_judgments() -> Select[Any]:
    """(judgment id, rater id) of every judgment an unreleased recalibration holds out, for store
    queries: from the failed window's first hidden anchor through readmission (open while out)."""
    hold, judgment = RecalibrationRow.__table__.c, JudgmentRow.__table__.c
    return select(judgment.id, judgment.rater_id).join(
        RecalibrationRow.__table__,
        (hold.rater_id == judgment.rater_id)
        & hold.released_at.is_(None)
        & (judgment.id >= hold.first_judgment_id)
        & (hold.through_judgment_id.is_(None) | (judgment.id <= hold.through_judgment_id)),
    )


def held_label_counts(session: Session, *, project_id: int) -> dict[int, int]:
    """Rater id -> live labels currently held out of training data by failed hidden-anchor windows."""
    held = held_judgments().subquery()
    query = (
        select(held.c.rater_id, func.count(func.distinct(held.c.id)))
        .join(JudgmentRow, JudgmentRow.id == held.c.id)
        .join(TaskRow, TaskRow.id == JudgmentRow.task_id)
        .where(TaskRow.project_id == project_id, TaskRow.kind == "compare")
        .group_by(held.c.rater_id)
    )
    return {int(rater): int(n) for rater, n in session.execute(query)}
