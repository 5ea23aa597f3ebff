"""Repository functions for red-team findings: outputs the reward model may love that graders reject.

Findings come from an automated search, from red-teamers in the web app, or from a file. A finding
is identified by its content (`sha256(prompt + "\\x1f" + response)`), so a retried submission or a
re-run search never stores the same output twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tether.conversation import canonical_messages, conversation, last_user_turn
from tether.errors import TetherInputError
from tether.store.models import FindingRow, as_utc, utcnow

__all__ = [
    "FINDING_SOURCES",
    "FINDING_STATUSES",
    "FindingRecord",
    "NewFinding",
    "add_findings",
    "finding_hash",
    "finding_id",
    "list_findings",
    "mark_routed",
    "set_finding_status",
]

FINDING_SOURCES = ("search", "web", "file")
FINDING_STATUSES = ("open", "routed", "dismissed")


@dataclass(frozen=True)
class NewFinding:
    """A suspicious output to store as a finding."""

    source: str
    """Who found it: "search" (automated), "web" (a red-teamer) or "file" (an import)."""
    prompt: str
    """The prompt that elicited the response."""
    response: str
    """The response found bad."""
    dimension: str | None = None
    """The spec dimension it fails, when known."""
    baseline_response: str | None = None
    """A reference output on the same prompt, e.g. the SFT policy's."""
    rm_score: float | None = None
    """The reward model's score of the response."""
    grader_score: float | None = None
    """An independent grader's score in [0, 1]."""
    note: str = ""
    """A red-teamer's explanation."""
    submitted_by: int | None = None
    """Rater id of the red-teamer who submitted it."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Free-form context (search run, checkpoint, ...)."""
    gap: float | None = None
    """How much more the RM likes it than graders do ("RM loves it, graders don't"); set by the caller."""
    messages: list[dict[str, str]] | None = None
    """The conversation the response answers, when it has more than one message; ``prompt`` is its
    last user turn."""


@dataclass(frozen=True)
class FindingRecord:
    id: int
    project_id: int
    content_hash: str
    source: str
    dimension: str | None
    prompt: str
    response: str
    baseline_response: str | None
    rm_score: float | None
    grader_score: float | None
    gap: float | None
    note: str
    submitted_by: int | None
    status: str
    task_id: int | None
    meta: dict[str, Any]
    spec_hash: str
    created_at: datetime
    messages: list[dict[str, str]] | None = None


def finding_hash(prompt: str, response: str, messages: Sequence[dict[str, str]] | None = None) -> str:
    """The content key of a finding: the same prompt (or conversation) and response are the same
    finding. A finding without messages keeps the key it had before conversations."""
    head = canonical_messages(messages) or prompt
    return hashlib.sha256(f"{head}\x1f{response}".encode()).hexdigest()


def _record(row: FindingRow) -> FindingRecord:
    return FindingRecord(
        id=row.id,
        project_id=row.project_id,
        content_hash=row.content_hash,
        source=row.source,
        dimension=row.dimension,
        prompt=row.prompt,
        response=row.response,
        baseline_response=row.baseline_response,
        rm_score=row.rm_score,
        grader_score=row.grader_score,
        gap=row.gap,
        note=row.note,
        submitted_by=row.submitted_by,
        status=row.status,
        task_id=row.task_id,
        meta=dict(row.meta or {}),
        spec_hash=row.spec_hash,
        created_at=as_utc(row.created_at),
        messages=list(row.messages) if row.messages else None,
    )


def _check(finding: NewFinding, index: int) -> None:
    where = f"findings[{index}]"
    if finding.source not in FINDING_SOURCES:
        raise TetherInputError(
            f"{where}.source: '{finding.source}' is not one of {', '.join(FINDING_SOURCES)}"
        )
    if not finding.prompt.strip() or not finding.response.strip():
        raise TetherInputError(f"{where}: prompt and response must not be empty")
    if finding.messages is not None:
        checked = conversation(finding.messages, where=f"{where}.messages")
        if last_user_turn(checked) != finding.prompt:
            raise TetherInputError(f"{where}.prompt: must be the last user turn of its messages")
    if finding.dimension is not None and not 1 <= len(finding.dimension) <= 50:
        raise TetherInputError(f"{where}.dimension must be 1-50 characters")


def _ids_by_hash(session: Session, project_id: int, hashes: Sequence[str]) -> dict[str, int]:
    rows = session.execute(
        select(FindingRow.content_hash, FindingRow.id).where(
            FindingRow.project_id == project_id, FindingRow.content_hash.in_(list(hashes))
        )
    ).all()
    return {h: finding_id for h, finding_id in rows}


def add_findings(
    session: Session, *, project_id: int, findings: Sequence[NewFinding], spec_hash: str
) -> list[int]:
    """Store findings in status "open"; returns their ids in input order.

    Idempotent on content: a finding whose prompt and response are already stored returns the
    existing id and changes nothing. Every finding is validated before anything is written.
    """
    for index, finding in enumerate(findings):
        _check(finding, index)
    if not findings:
        return []
    hashes = [finding_hash(f.prompt, f.response, f.messages) for f in findings]
    ids = _ids_by_hash(session, project_id, hashes)
    fresh = {h: f for h, f in zip(hashes, findings, strict=True) if h not in ids}
    if fresh:
        now = utcnow()
        rows = [
            FindingRow(
                project_id=project_id,
                content_hash=h,
                source=f.source,
                dimension=f.dimension,
                prompt=f.prompt,
                messages=f.messages,
                response=f.response,
                baseline_response=f.baseline_response,
                rm_score=f.rm_score,
                grader_score=f.grader_score,
                gap=f.gap,
                note=f.note,
                submitted_by=f.submitted_by,
                status="open",
                task_id=None,
                meta=dict(f.meta),
                spec_hash=spec_hash,
                created_at=now,
            )
            for h, f in fresh.items()
        ]
        try:
            with session.begin_nested():
                session.add_all(rows)
        except IntegrityError:
            pass  # a concurrent writer stored some of these first; read every id back below
        ids = _ids_by_hash(session, project_id, hashes)
    return [ids[h] for h in hashes]


def finding_id(
    session: Session,
    *,
    project_id: int,
    prompt: str,
    response: str,
    messages: Sequence[dict[str, str]] | None = None,
) -> int | None:
    """The id of the finding with this content, if it is stored."""
    key = finding_hash(prompt, response, messages)
    return _ids_by_hash(session, project_id, [key]).get(key)


def list_findings(
    session: Session,
    *,
    project_id: int,
    status: str | None = None,
    source: str | None = None,
    limit: int | None = None,
    submitted_by: int | None = None,
) -> list[FindingRecord]:
    """Findings with the largest gap first, those without a gap last, then newest first."""
    query = select(FindingRow).where(FindingRow.project_id == project_id)
    if status is not None:
        query = query.where(FindingRow.status == status)
    if source is not None:
        query = query.where(FindingRow.source == source)
    if submitted_by is not None:
        query = query.where(FindingRow.submitted_by == submitted_by)
    # `gap IS NULL` sorts false (0) before true (1) on both SQLite and PostgreSQL: NULLs go last.
    query = query.order_by(
        FindingRow.gap.is_(None), FindingRow.gap.desc(), FindingRow.created_at.desc(), FindingRow.id.desc()
    )
    if limit is not None:
        query = query.limit(limit)
    return [_record(r) for r in session.scalars(query)]


def _rows(session: Session, finding_ids: Sequence[int]) -> dict[int, FindingRow]:
    rows = session.scalars(select(FindingRow).where(FindingRow.id.in_(list(finding_ids)))).all()
    found = {r.id: r for r in rows}
    missing = sorted(set(finding_ids) - set(found))
    if missing:
        raise TetherInputError(f"unknown finding ids: {', '.join(map(str, missing))}")
    return found


def mark_routed(session: Session, *, finding_ids: Sequence[int], task_ids: Sequence[int]) -> None:
    """Record that each finding went to labeling as the comparison task (`tasks` table) at its position."""
    if len(finding_ids) != len(task_ids):
        raise TetherInputError(
            "mark_routed needs one task per finding, "
            f"got {len(finding_ids)} findings and {len(task_ids)} tasks"
        )
    rows = _rows(session, finding_ids)
    for finding_id, task_id in zip(finding_ids, task_ids, strict=True):
        rows[finding_id].status = "routed"
        rows[finding_id].task_id = task_id
    session.flush()


def set_finding_status(session: Session, *, finding_id: int, status: str) -> FindingRecord:
    """Change a finding's status (e.g. "dismissed" after review)."""
    if status not in FINDING_STATUSES:
        raise TetherInputError(f"finding status '{status}' is not one of {', '.join(FINDING_STATUSES)}")
    row = _rows(session, [finding_id])[finding_id]
    row.status = status
    session.flush()
    return _record(row)
