"""Repository functions for loop iterations: one row per `tether loop` iteration, updated step by step.

An iteration moves through the steps of `tether.feedback.loop.STEPS`; after each step the loop
records the step's artifacts (`artifacts[step] = artifact id`) and its figures (`results[step]`),
so a killed loop resumes at the first step it had not finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tether.errors import TetherInputError
from tether.store.models import IterationRow, as_utc, utcnow

ITERATION_STATUSES = ("running", "completed", "stopped", "failed")
"""running (or killed mid-step); completed; stopped (a failing gate or critical alert); failed (an error)."""


@dataclass(frozen=True)
class IterationRecord:
    id: int
    project_id: int
    number: int
    status: str
    step: str
    """The last step finished ("" before the first)."""
    artifacts: dict[str, Any]
    results: dict[str, Any]
    focus: dict[str, Any]
    """The labeling focus this iteration proposes for the next one."""
    diagnosis: str
    reason_stopped: str | None
    spec_hash: str
    started_at: datetime
    ended_at: datetime | None


def _record(row: IterationRow) -> IterationRecord:
    return IterationRecord(
        id=row.id,
        project_id=row.project_id,
        number=row.number,
        status=row.status,
        step=row.step,
        artifacts=dict(row.artifacts or {}),
        results=dict(row.results or {}),
        focus=dict(row.focus or {}),
        diagnosis=row.diagnosis or "",
        reason_stopped=row.reason_stopped,
        spec_hash=row.spec_hash,
        started_at=as_utc(row.started_at),
        ended_at=as_utc(row.ended_at) if row.ended_at is not None else None,
    )


def start_iteration(session: Session, *, project_id: int, spec_hash: str) -> IterationRecord:
    """A new iteration numbered one past the project's last."""
    last = session.scalar(select(func.max(IterationRow.number)).where(IterationRow.project_id == project_id))
    row = IterationRow(
        project_id=project_id,
        number=(last or 0) + 1,
        status="running",
        step="",
        artifacts={},
        results={},
        focus={},
        diagnosis="",
        spec_hash=spec_hash,
    )
    session.add(row)
    session.flush()
    return _record(row)


def _row(session: Session, iteration_id: int) -> IterationRow:
    row = session.get(IterationRow, iteration_id)
    if row is None:
        raise TetherInputError(f"no loop iteration with id {iteration_id}")
    return row


def record_step(
    session: Session,
    *,
    iteration_id: int,
    step: str,
    artifacts: dict[str, Any] | None = None,
    results: dict[str, Any] | None = None,
) -> IterationRecord:
    """Mark `step` finished, merging its artifact ids and figures into the iteration."""
    row = _row(session, iteration_id)
    row.step = step
    if artifacts:
        row.artifacts = {**(row.artifacts or {}), **artifacts}
    if results is not None:
        row.results = {**(row.results or {}), step: results}
    session.flush()
    return _record(row)


def record_loop_note(session: Session, *, iteration_id: int, note: dict[str, Any]) -> IterationRecord:
    """Merge `note` into results["loop"] (where the loop keeps where and why it stopped)."""
    row = _row(session, iteration_id)
    results = dict(row.results or {})
    results["loop"] = {**(results.get("loop") or {}), **note}
    row.results = results
    session.flush()
    return _record(row)


def finish_iteration(
    session: Session,
    *,
    iteration_id: int,
    status: str,
    diagnosis: str = "",
    focus: dict[str, Any] | None = None,
    reason_stopped: str | None = None,
) -> IterationRecord:
    if status not in ITERATION_STATUSES or status == "running":
        raise ValueError(f"finish_iteration: status must be completed, stopped or failed, not {status!r}")
    row = _row(session, iteration_id)
    row.status = status
    row.diagnosis = diagnosis
    row.focus = dict(focus or {})
    row.reason_stopped = reason_stopped
    row.ended_at = utcnow()
    session.flush()
    return _record(row)


def reopen_iteration(session: Session, *, iteration_id: int) -> IterationRecord:
    """Mark a stopped or killed iteration running again, for `tether loop --resume`."""
    row = _row(session, iteration_id)
    row.status = "running"
    row.reason_stopped = None
    row.ended_at = None
    session.flush()
    return _record(row)


def list_iterations(session: Session, *, project_id: int) -> list[IterationRecord]:
    """Every iteration of the project, oldest first."""
    rows = session.scalars(
        select(IterationRow).where(IterationRow.project_id == project_id).order_by(IterationRow.number)
    )
    return [_record(r) for r in rows]


def latest_iteration(session: Session, *, project_id: int) -> IterationRecord | None:
    rows = list_iterations(session, project_id=project_id)
    return rows[-1] if rows else None
