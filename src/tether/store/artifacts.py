"""The artifact registry: every export, model, run and report, with its lineage."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tether.errors import TetherInputError
from tether.store.models import ArtifactParentRow, ArtifactRow, as_utc, utcnow
from tether.store.records import ArtifactRecord


def _record(session: Session, row: ArtifactRow) -> ArtifactRecord:
    parents = session.scalars(
        select(ArtifactParentRow.parent_id).where(ArtifactParentRow.child_id == row.id)
    ).all()
    return ArtifactRecord(
        id=row.id,
        project_id=row.project_id,
        kind=row.kind,
        path=row.path,
        content_hash=row.content_hash,
        spec_hash=row.spec_hash,
        meta=dict(row.meta or {}),
        created_at=as_utc(row.created_at),
        parents=tuple(sorted(parents)),
    )


def new_artifact_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:12]}"


def register_artifact(
    session: Session,
    *,
    project_id: int,
    kind: str,
    path: str,
    content_hash: str,
    spec_hash: str,
    parents: Iterable[str] = (),
    meta: dict[str, Any] | None = None,
) -> ArtifactRecord:
    """Register an artifact. Registering the same kind, path and content again returns the
    existing record, so a retried step never duplicates lineage."""
    existing = session.scalars(
        select(ArtifactRow).where(
            ArtifactRow.project_id == project_id,
            ArtifactRow.kind == kind,
            ArtifactRow.content_hash == content_hash,
            ArtifactRow.path == path,
        )
    ).one_or_none()
    if existing is not None:
        return _record(session, existing)
    parent_ids = sorted(set(parents))
    known = set(session.scalars(select(ArtifactRow.id).where(ArtifactRow.id.in_(parent_ids))).all())
    missing = [p for p in parent_ids if p not in known]
    if missing:
        raise TetherInputError(f"artifact parents not found in the registry: {', '.join(missing)}")
    row = ArtifactRow(
        id=new_artifact_id(kind),
        project_id=project_id,
        kind=kind,
        path=path,
        content_hash=content_hash,
        spec_hash=spec_hash,
        meta=meta or {},
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    session.add_all(ArtifactParentRow(child_id=row.id, parent_id=p) for p in parent_ids)
    session.flush()
    return _record(session, row)


def get_artifact(session: Session, *, artifact_id: str) -> ArtifactRecord | None:
    row = session.get(ArtifactRow, artifact_id)
    return None if row is None else _record(session, row)


def find_artifact_by_path(session: Session, *, project_id: int, path: str) -> ArtifactRecord | None:
    """The newest artifact registered at `path`, if any."""
    row = session.scalars(
        select(ArtifactRow)
        .where(ArtifactRow.project_id == project_id, ArtifactRow.path == path)
        .order_by(ArtifactRow.created_at.desc(), ArtifactRow.id.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else _record(session, row)


def latest_artifact(
    session: Session, *, project_id: int, kind: str, where_meta: dict[str, Any] | None = None
) -> ArtifactRecord | None:
    """The project's newest artifact of `kind`, optionally with matching meta values."""
    rows = session.scalars(
        select(ArtifactRow)
        .where(ArtifactRow.project_id == project_id, ArtifactRow.kind == kind)
        .order_by(ArtifactRow.created_at.desc(), ArtifactRow.id.desc())
    )
    for row in rows:
        meta = row.meta or {}
        if all(meta.get(k) == v for k, v in (where_meta or {}).items()):
            return _record(session, row)
    return None


def list_artifacts(session: Session, *, project_id: int, kind: str | None = None) -> list[ArtifactRecord]:
    """Artifacts of a project, oldest first."""
    query = select(ArtifactRow).where(ArtifactRow.project_id == project_id)
    if kind is not None:
        query = query.where(ArtifactRow.kind == kind)
    rows = session.scalars(query.order_by(ArtifactRow.created_at, ArtifactRow.id))
    return [_record(session, r) for r in rows]


def lineage(session: Session, *, artifact_id: str) -> list[ArtifactRecord]:
    """The artifact and all its ancestors, breadth first, each once."""
    seen: dict[str, ArtifactRecord] = {}
    frontier = [artifact_id]
    while frontier:
        current = frontier.pop(0)
        if current in seen:
            continue
        record = get_artifact(session, artifact_id=current)
        if record is None:
            raise TetherInputError(f"artifact '{current}' is not in the registry")
        seen[current] = record
        frontier.extend(record.parents)
    return list(seen.values())
