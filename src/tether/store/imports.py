"""Repository functions for imported preference pairs: an imported source is a rater.

An import writes, for each pair, a live comparison task (origin ``import:<source>``, the chosen
reply as response A) whose one slot the source's rater has already filled with its judgment. The
rest of Tether then treats the source as it treats a person: its labels train a reward model only
while its status is ``active``, the agreement report lists it, and an audit (`add_audit_slots`)
opens more slots on its tasks for calibrated raters, whose labels it is then compared with.

Everything is bulk Core inserts with RETURNING (SQLite ≥ 3.35 and PostgreSQL): a 161k-pair file is
about a million rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from tether.conversation import canonical_messages
from tether.store.models import AssignmentRow, JudgmentRow, PromptRow, ResponseRow, TaskRow, utcnow

ORIGIN_PREFIX = "import:"
CHUNK = 5_000
"""Rows per INSERT statement: large enough to amortize each round trip, small enough for SQLite's
limit on bound parameters."""


@dataclass(frozen=True)
class ImportedLabel:
    """One pair to store: the prompt it answers (an existing or a new prompt id) and the label."""

    prompt_id: int
    chosen: str
    rejected: str
    tie: bool
    key: str
    """The pair's content hash: the judgment's idempotency key, so a re-import skips it."""
    rationale: str
    meta: dict[str, Any]


def source_origin(source: str) -> str:
    return f"{ORIGIN_PREFIX}{source}"


def imported_keys(session: Session, *, rater_id: int) -> set[str]:
    """The pair keys this source's rater already holds judgments for."""
    query = select(JudgmentRow.idempotency_key).where(JudgmentRow.rater_id == rater_id)
    return set(session.scalars(query).all())


def prompt_ids_by_content(session: Session, *, project_id: int) -> dict[tuple[str, str], int]:
    """Existing prompts by (text, canonical messages JSON or ""): what an import links to."""
    rows = session.execute(
        select(PromptRow.id, PromptRow.text, PromptRow.messages).where(PromptRow.project_id == project_id)
    )
    return {(text, canonical_messages(messages)): pid for pid, text, messages in rows}


def _insert_returning(session: Session, table: Any, column: Any, rows: list[dict[str, Any]]) -> list[int]:
    ids: list[int] = []
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        ids += session.scalars(insert(table).returning(column, sort_by_parameter_order=True), chunk).all()
    return ids


def _insert_plain(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(table), rows[start : start + CHUNK])


def add_imported_labels(
    session: Session,
    *,
    project_id: int,
    rater_id: int,
    source: str,
    labels: Sequence[ImportedLabel],
    spec_hash: str,
) -> list[int]:
    """Store each label as a filled live task of origin ``import:<source>``; returns the task ids.
    The caller skips keys already imported (`imported_keys`)."""
    if not labels:
        return []
    now, origin = utcnow(), source_origin(source)
    responses = [
        {"project_id": project_id, "prompt_id": lab.prompt_id, "text": text, "source": origin}
        | {"spec_hash": spec_hash, "created_at": now}
        for lab in labels
        for text in (lab.chosen, lab.rejected)
    ]
    response_ids = _insert_returning(session, ResponseRow, ResponseRow.id, responses)
    tasks = [
        {"project_id": project_id, "batch_id": None, "prompt_id": lab.prompt_id, "kind": "compare"}
        | {"response_a_id": response_ids[2 * i], "response_b_id": response_ids[2 * i + 1]}
        | {"anchor_key": None, "raters_needed": 1, "origin": origin, "meta": lab.meta}
        | {"spec_hash": spec_hash, "created_at": now}
        for i, lab in enumerate(labels)
    ]
    task_ids = _insert_returning(session, TaskRow, TaskRow.id, tasks)
    slots = [
        {"task_id": tid, "rater_id": rater_id, "purpose": "live", "round": 0, "position": 0}
        | {"swapped": False, "status": "done", "claimed_at": now, "created_at": now}
        for tid in task_ids
    ]
    slot_ids = _insert_returning(session, AssignmentRow, AssignmentRow.id, slots)
    judgments: list[dict[str, Any]] = [
        {"assignment_id": sid, "task_id": tid, "rater_id": rater_id}
        | {"choice": "tie" if lab.tie else "A", "shown_choice": "tie" if lab.tie else "A", "swapped": False}
        | {"strength": 0 if lab.tie else 2, "rationale": lab.rationale, "seconds": 0.0}
        | {"idempotency_key": lab.key, "correct": None, "spec_hash": spec_hash, "created_at": now}
        for sid, tid, lab in zip(slot_ids, task_ids, labels, strict=True)
    ]
    _insert_plain(session, JudgmentRow, judgments)
    return task_ids


def source_task_ids(session: Session, *, project_id: int, source: str) -> list[int]:
    """The tasks an import of ``source`` made, in task order."""
    query = select(TaskRow.id).where(
        TaskRow.project_id == project_id, TaskRow.origin == source_origin(source)
    )
    return list(session.scalars(query.order_by(TaskRow.id)).all())


def audited_task_ids(session: Session, *, task_ids: Sequence[int]) -> set[int]:
    """Those of ``task_ids`` that already have more slots than the source's own."""
    if not task_ids:
        return set()
    query = (
        select(AssignmentRow.task_id)
        .where(AssignmentRow.task_id.in_(list(task_ids)))
        .group_by(AssignmentRow.task_id)
        .having(func.count() > 1)
    )
    return set(session.scalars(query).all())


def add_audit_slots(session: Session, *, task_ids: Sequence[int], raters: int) -> int:
    """Open ``raters`` more slots on each task, for calibrated raters to label it; returns how many.

    The slots get new ids, above every open slot's, so they are claimed after the work already
    queued (`tether.store.slots`) and never reopen anything."""
    now = utcnow()
    rows = [
        {"task_id": tid, "rater_id": None, "purpose": "live", "round": 0, "position": position}
        | {"status": "open", "created_at": now}
        for tid in task_ids
        for position in range(1, raters + 1)
    ]
    _insert_plain(session, AssignmentRow, rows)
    if task_ids:
        session.execute(
            update(TaskRow)
            .where(TaskRow.id.in_(list(task_ids)))
            .values(raters_needed=TaskRow.raters_needed + raters)
        )
    return len(rows)


@dataclass(frozen=True)
class SourceVote:
    """One judgment on a task an import made: the source's own, or an auditing rater's."""

    task_id: int
    dimension: str
    rater_id: int
    rater_kind: str
    rater_status: str
    choice: str
    """Canonical: A is the reply the source chose."""


def source_votes(session: Session, *, project_id: int, source: str) -> list[SourceVote]:
    """Every judgment on ``source``'s tasks, in task then judgment order."""
    from tether.store.models import RaterRow

    query = (
        select(
            JudgmentRow.task_id,
            PromptRow.dimension,
            JudgmentRow.rater_id,
            RaterRow.kind,
            RaterRow.status,
            JudgmentRow.choice,
        )
        .join(TaskRow, TaskRow.id == JudgmentRow.task_id)
        .join(PromptRow, PromptRow.id == TaskRow.prompt_id)
        .join(RaterRow, RaterRow.id == JudgmentRow.rater_id)
        .where(TaskRow.project_id == project_id, TaskRow.origin == source_origin(source))
        .order_by(JudgmentRow.task_id, JudgmentRow.id)
    )
    return [SourceVote(*row) for row in session.execute(query)]
