"""Repository functions for raters and their status history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tether.errors import TetherInputError
from tether.store.models import RaterEventRow, RaterRow, as_utc, utcnow

RATER_KINDS = ("human", "simulated", "ai")
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
