"""Repository functions for alerts: what a run's monitors raised, with the numbers behind each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from tether.errors import TetherInputError
from tether.store.models import AlertRow, RunRow, as_utc, utcnow

SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class AlertRecord:
    id: int
    project_id: int
    run_id: str
    step: int
    monitor: str
    severity: str
    condition: str
    message: str
    evidence: dict[str, Any]
    created_at: datetime


def add_alerts(session: Session, *, run_id: str, alerts: Sequence[Mapping[str, Any]]) -> int:
    """Store alerts of a run, each a mapping with step, monitor, severity, condition, message and
    evidence (`HackingAlert.to_dict()`); returns how many were written."""
    if not alerts:
        return 0
    run = session.get(RunRow, run_id)
    if run is None:
        raise TetherInputError(f"run '{run_id}' is not in the store")
    bad = [a.get("severity") for a in alerts if a.get("severity") not in SEVERITIES]
    if bad:
        raise TetherInputError(f"alert severity must be one of {', '.join(SEVERITIES)}, got {bad[0]!r}")
    now = utcnow()
    rows = [
        {
            "project_id": run.project_id,
            "run_id": run_id,
            "step": int(a["step"]),
            "monitor": str(a["monitor"]),
            "severity": str(a["severity"]),
            "condition": str(a.get("condition", "")),
            "message": str(a["message"]),
            "evidence": dict(a.get("evidence", {})),
            "created_at": now,
        }
        for a in alerts
    ]
    session.execute(insert(AlertRow), rows)
    return len(rows)


def list_alerts(
    session: Session, *, run_id: str | None = None, project_id: int | None = None, severity: str | None = None
) -> list[AlertRecord]:
    """Alerts of a run or a project, in the order they were raised."""
    if run_id is None and project_id is None:
        raise TetherInputError("list_alerts needs a run_id or a project_id")
    query = select(AlertRow)
    if run_id is not None:
        query = query.where(AlertRow.run_id == run_id)
    if project_id is not None:
        query = query.where(AlertRow.project_id == project_id)
    if severity is not None:
        query = query.where(AlertRow.severity == severity)
    return [
        AlertRecord(
            id=r.id,
            project_id=r.project_id,
            run_id=r.run_id,
            step=r.step,
            monitor=r.monitor,
            severity=r.severity,
            condition=r.condition,
            message=r.message,
            evidence=dict(r.evidence or {}),
            created_at=as_utc(r.created_at),
        )
        for r in session.scalars(query.order_by(AlertRow.id))
    ]
