"""Periodic rater recalibration: `tether feedback recalibrate [--apply]`.

    tether feedback recalibrate            # who is due, and why
    tether feedback recalibrate --apply    # send them back to calibration (a fresh anchor round)

The spec's `labeling.recalibrate_every_days` and `labeling.recalibrate_every_judgments` set the
schedule; either may be unset, and a rater is due when any set limit is reached. The clock starts
when the rater last became active: passing calibration, or an admin's readmission, which vouches for
the rater just the same. Only active raters are considered (admins do not label).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tether.labeling.raters import recalibrate
from tether.project import Project
from tether.store.judgments import count_judgments_since
from tether.store.raters import RaterRecord, list_raters, rater_events


@dataclass(frozen=True)
class DueRater:
    name: str
    reason: str
    """Which limit was reached, with the figures."""


def due_reason(
    *,
    now: datetime,
    active_since: datetime,
    judgments_since: int,
    every_days: int | None,
    every_judgments: int | None,
) -> str | None:
    """Why a rater active since `active_since` is due for recalibration, or None when not due."""
    reasons = []
    days = (now - active_since).total_seconds() / 86_400
    if every_days is not None and days >= every_days:
        reasons.append(f"{days:.0f} days since last calibrated (every {every_days} days)")
    if every_judgments is not None and judgments_since >= every_judgments:
        reasons.append(f"{judgments_since} judgments since last calibrated (every {every_judgments})")
    return "; ".join(reasons) or None


def active_since(rater: RaterRecord, events: list[tuple[str, datetime]]) -> datetime:
    """When the rater last became active, from (to_status, time) events, oldest first."""
    times = [when for status, when in events if status == "active"]
    return times[-1] if times else rater.created_at


def raters_due(project: Project, *, now: datetime | None = None) -> list[DueRater]:
    """Active raters due for recalibration under the spec's schedule (empty when none is set)."""
    policy = project.spec.labeling
    every_days, every_judgments = policy.recalibrate_every_days, policy.recalibrate_every_judgments
    if every_days is None and every_judgments is None:
        return []
    now = now or datetime.now(UTC)
    project_id = project.project_id
    due = []
    with project.store.session() as session:
        for rater in list_raters(session, project_id=project_id):
            if rater.status != "active" or rater.is_admin:
                continue
            events = [(e.to_status, e.created_at) for e in rater_events(session, rater_id=rater.id)]
            since = active_since(rater, events)
            judged = count_judgments_since(session, rater_id=rater.id, since=since)
            reason = due_reason(
                now=now,
                active_since=since,
                judgments_since=judged,
                every_days=every_days,
                every_judgments=every_judgments,
            )
            if reason is not None:
                due.append(DueRater(rater.name, reason))
    return due


def apply_recalibration(project: Project, due: list[DueRater]) -> list[RaterRecord]:
    """Send each due rater back to calibration, recording the schedule's reason."""
    return [recalibrate(project, name=d.name, reason=f"scheduled recalibration: {d.reason}") for d in due]
