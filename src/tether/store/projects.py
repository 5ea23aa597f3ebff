"""Repository functions for projects and spec versions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tether.errors import TetherInputError
from tether.store.models import ProjectRow, SpecVersionRow, as_utc, utcnow
from tether.store.records import ProjectRecord, SpecVersionRecord


def _project(row: ProjectRow) -> ProjectRecord:
    return ProjectRecord(id=row.id, name=row.name, created_at=as_utc(row.created_at))


def _spec_version(row: SpecVersionRow) -> SpecVersionRecord:
    return SpecVersionRecord(
        project_id=row.project_id,
        spec_hash=row.spec_hash,
        name=row.name,
        version=row.version,
        content=dict(row.content),
        created_at=as_utc(row.created_at),
    )


def ensure_project(session: Session, *, name: str) -> ProjectRecord:
    """Return the project called `name`, creating it on first use (idempotent)."""
    row = session.scalars(select(ProjectRow).where(ProjectRow.name == name)).one_or_none()
    if row is None:
        row = ProjectRow(name=name, created_at=utcnow())
        session.add(row)
        session.flush()
    return _project(row)


def get_project(session: Session, *, name: str) -> ProjectRecord:
    row = session.scalars(select(ProjectRow).where(ProjectRow.name == name)).one_or_none()
    if row is None:
        raise TetherInputError(f"project '{name}' is not in this store")
    return _project(row)


def record_spec_version(
    session: Session, *, project_id: int, spec_hash: str, name: str, version: str, content: dict[str, Any]
) -> SpecVersionRecord:
    """Store a spec version under its content hash; recording the same hash again is a no-op."""
    row = session.scalars(
        select(SpecVersionRow).where(
            SpecVersionRow.project_id == project_id, SpecVersionRow.spec_hash == spec_hash
        )
    ).one_or_none()
    if row is None:
        row = SpecVersionRow(
            project_id=project_id,
            spec_hash=spec_hash,
            name=name,
            version=version,
            content=content,
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
    return _spec_version(row)


def list_spec_versions(session: Session, *, project_id: int) -> list[SpecVersionRecord]:
    """Spec versions of a project, oldest first."""
    rows = session.scalars(
        select(SpecVersionRow)
        .where(SpecVersionRow.project_id == project_id)
        .order_by(SpecVersionRow.created_at, SpecVersionRow.id)
    )
    return [_spec_version(r) for r in rows]


def get_spec_version(session: Session, *, project_id: int, spec_hash: str) -> SpecVersionRecord | None:
    row = session.scalars(
        select(SpecVersionRow).where(
            SpecVersionRow.project_id == project_id, SpecVersionRow.spec_hash == spec_hash
        )
    ).one_or_none()
    return None if row is None else _spec_version(row)
