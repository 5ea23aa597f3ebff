"""Repository functions for runs: one row per long job (an RL run), from start to its end and reason."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tether.errors import TetherInputError
from tether.store.models import RunRow, as_utc, utcnow

RUN_STATUSES = ("running", "completed", "stopped", "failed", "interrupted")
"""running; completed (all steps); stopped (KL budget or a critical alert); failed (an error); interrupted."""


@dataclass(frozen=True)
class RunRecord:
    id: str
    project_id: int
    kind: str
    status: str
    config: dict[str, Any]
    meta: dict[str, Any]
    gate_overridden: bool
    reason_stopped: str | None
    artifact_id: str | None
    spec_hash: str
    started_at: datetime
    ended_at: datetime | None


def _record(row: RunRow) -> RunRecord:
    return RunRecord(
        id=row.id,
        project_id=row.project_id,
        kind=row.kind,
        status=row.status,
        config=dict(row.config or {}),
        meta=dict(row.meta or {}),
        gate_overridden=bool(row.gate_overridden),
        reason_stopped=row.reason_stopped,
        artifact_id=row.artifact_id,
        spec_hash=row.spec_hash,
        started_at=as_utc(row.started_at),
        ended_at=as_utc(row.ended_at) if row.ended_at is not None else None,
    )


def create_run(
    session: Session,
    *,
    project_id: int,
    kind: str,
    config: dict[str, Any],
    spec_hash: str,
    meta: dict[str, Any] | None = None,
    gate_overridden: bool = False,
) -> RunRecord:
    """A new run in status "running", with a fresh id ("<kind>-<12 hex>")."""
    row = RunRow(
        id=f"{kind}-{uuid.uuid4().hex[:12]}",
        project_id=project_id,
        kind=kind,
        status="running",
        config=config,
        meta=meta or {},
        gate_overridden=gate_overridden,
        spec_hash=spec_hash,
        started_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return _record(row)


def finish_run(
    session: Session,
    *,
    run_id: str,
    status: str,
    reason: str | None = None,
    artifact_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> RunRecord:
    """Close a run: its final status, why it stopped, its checkpoint artifact; `meta` is merged in."""
    if status not in RUN_STATUSES or status == "running":
        raise TetherInputError(f"a run ends as one of {', '.join(RUN_STATUSES[1:])}, not {status!r}")
    row = session.get(RunRow, run_id)
    if row is None:
        raise TetherInputError(f"run '{run_id}' is not in the store")
    row.status = status
    row.reason_stopped = reason
    row.artifact_id = artifact_id
    row.meta = {**(row.meta or {}), **(meta or {})}
    row.ended_at = utcnow()
    session.flush()
    return _record(row)


def get_run(session: Session, *, run_id: str) -> RunRecord | None:
    row = session.get(RunRow, run_id)
    return None if row is None else _record(row)


def list_runs(session: Session, *, project_id: int, kind: str | None = None) -> list[RunRecord]:
    """A project's runs, oldest first."""
    query = select(RunRow).where(RunRow.project_id == project_id)
    if kind is not None:
        query = query.where(RunRow.kind == kind)
    return [_record(r) for r in session.scalars(query.order_by(RunRow.started_at, RunRow.id))]
