"""Repository functions for production feedback: flagged outputs, stored once per idempotency key.

Writes are `INSERT ... ON CONFLICT DO NOTHING` on both SQLite and PostgreSQL, so a retry, or two
senders racing with the same key, store one row and never fail on the unique constraint.

The `user_meta` column holds a small JSON object with up to two keys, so that no other column is
needed: "user" is the sender's user metadata (present only when the spec's
`feedback.store_user_metadata` allows it; the caller drops it otherwise) and "prompt" is optional
context about the prompt, such as the sandbox's ground truth. Records expose them as two fields.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Insert, Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tether.conversation import Prompt, canonical_messages, from_stored
from tether.errors import TetherInputError
from tether.store.models import FeedbackRow, PromptRow, TaskRow, as_utc, utcnow

FEEDBACK_STATUSES = ("new", "skipped", "review", "ok", "routed")
"""new (not sampled yet); skipped (not chosen for review); review (a grading task is open);
ok (graded at the rubric's top level: nothing to learn); routed (became a comparison task)."""
Outcome = Literal["stored", "duplicate", "conflict"]
"""stored (new); duplicate (the same item under a known key); conflict (a known key, other content)."""
_CHUNK = 500
"""Rows per INSERT or IN (...) list: well under SQLite's limit on bound parameters."""
_TABLE = cast(Table, FeedbackRow.__table__)


@dataclass(frozen=True)
class NewFeedback:
    """A flagged production output, validated by `tether.feedback.ingest`."""

    idempotency_key: str
    prompt: str
    response: str
    model_version: str
    reason: str
    user_meta: dict[str, Any] | None = None
    """The sender's user metadata; None unless the spec allows storing it."""
    prompt_meta: dict[str, Any] | None = None
    """Context about the prompt (the sandbox's ground truth), if the sender gave any."""
    messages: list[dict[str, str]] | None = None
    """The conversation the response answers, when it has more than one message."""

    def content(self) -> tuple[str, str, str, str, str]:
        """What makes two items with one key the same item."""
        return (self.prompt, self.response, self.model_version, self.reason, _canonical(self.messages))


@dataclass(frozen=True)
class FeedbackRecord:
    id: int
    idempotency_key: str
    prompt: str
    response: str
    model_version: str
    reason: str
    user_meta: dict[str, Any] | None
    prompt_meta: dict[str, Any] | None
    status: str
    grading_task_id: int | None
    spec_hash: str
    received_at: datetime
    messages: list[dict[str, str]] | None = None

    def content(self) -> tuple[str, str, str, str, str]:
        return (self.prompt, self.response, self.model_version, self.reason, _canonical(self.messages))

    @property
    def conversation(self) -> Prompt:
        """What the model answered: the conversation, else the prompt."""
        return from_stored(self.prompt, self.messages)


def _canonical(messages: list[dict[str, str]] | None) -> str:
    return canonical_messages(messages)


@dataclass(frozen=True)
class FeedbackOutcome:
    """What happened to one submitted item."""

    idempotency_key: str
    id: int
    """The stored item's id (the earlier item's, for a duplicate or a conflict)."""
    outcome: Outcome


def _pack(item: NewFeedback) -> dict[str, Any] | None:
    packed = {k: v for k, v in (("user", item.user_meta), ("prompt", item.prompt_meta)) if v is not None}
    return packed or None


def _record(row: Any) -> FeedbackRecord:
    """From an ORM row or a Core row of the feedback table (same attribute names)."""
    packed = dict(row.user_meta or {})
    return FeedbackRecord(
        id=row.id,
        idempotency_key=row.idempotency_key,
        prompt=row.prompt,
        response=row.response,
        model_version=row.model_version,
        reason=row.reason,
        user_meta=packed.get("user"),
        prompt_meta=packed.get("prompt"),
        status=row.status,
        grading_task_id=row.grading_task_id,
        spec_hash=row.spec_hash,
        received_at=as_utc(row.received_at),
        messages=list(row.messages) if row.messages else None,
    )


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _insert_new(session: Session) -> Insert:
    """INSERT that skips rows whose (project, key) is taken, in the session's SQL dialect."""
    keys = ["project_id", "idempotency_key"]
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(_TABLE).on_conflict_do_nothing(index_elements=keys)
    return sqlite.insert(_TABLE).on_conflict_do_nothing(index_elements=keys)


def _check(item: NewFeedback, index: int) -> None:
    if not item.idempotency_key or len(item.idempotency_key) > 200:
        raise TetherInputError(f"feedback[{index}].idempotency_key must be 1-200 characters")
    if not item.prompt.strip() or not item.response.strip():
        raise TetherInputError(f"feedback[{index}]: prompt and response must not be empty")


def stored_by_key(session: Session, *, project_id: int, keys: Sequence[str]) -> dict[str, FeedbackRecord]:
    """The stored items under these keys (unknown keys are absent)."""
    found: dict[str, FeedbackRecord] = {}
    for chunk in _chunks(list(dict.fromkeys(keys))):
        rows = session.execute(
            select(*_TABLE.c).where(_TABLE.c.project_id == project_id, _TABLE.c.idempotency_key.in_(chunk))
        ).all()
        found.update({row.idempotency_key: _record(row) for row in rows})
    return found


def add_feedback(
    session: Session, *, project_id: int, items: Sequence[NewFeedback], spec_hash: str
) -> list[FeedbackOutcome]:
    """Store flagged items, each once per key; one outcome per item, in input order.

    A key seen before (in the store, or earlier in `items`) stores nothing: the outcome is
    "duplicate" when the content matches, "conflict" when it does not. Concurrent senders of one
    key are safe: the database keeps the first row and the others read it back."""
    for index, item in enumerate(items):
        _check(item, index)
    first: dict[str, NewFeedback] = {}
    for item in items:
        first.setdefault(item.idempotency_key, item)  # the first item of each key wins
    now = utcnow()
    rows = [
        {
            "project_id": project_id,
            "idempotency_key": item.idempotency_key,
            "prompt": item.prompt,
            "messages": item.messages,
            "response": item.response,
            "model_version": item.model_version,
            "reason": item.reason,
            "user_meta": _pack(item),
            "status": "new",
            "spec_hash": spec_hash,
            "received_at": now,
        }
        for item in first.values()
    ]
    inserted: set[str] = set()
    for chunk in _chunks(rows):
        statement = _insert_new(session).values(list(chunk)).returning(_TABLE.c.idempotency_key)
        inserted.update(session.scalars(statement).all())
    stored = stored_by_key(session, project_id=project_id, keys=list(first))
    outcomes: list[FeedbackOutcome] = []
    claimed: set[str] = set()
    for item in items:
        key = item.idempotency_key
        record = stored[key]
        if key in inserted and key not in claimed:
            claimed.add(key)
            outcomes.append(FeedbackOutcome(key, record.id, "stored"))
        else:
            same = record.content() == item.content()
            outcomes.append(FeedbackOutcome(key, record.id, "duplicate" if same else "conflict"))
    return outcomes


def list_feedback(
    session: Session,
    *,
    project_id: int,
    status: str | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[FeedbackRecord]:
    """Stored items in arrival order (or newest first), optionally of one status."""
    query = select(FeedbackRow).where(FeedbackRow.project_id == project_id)
    if status is not None:
        query = query.where(FeedbackRow.status == status)
    order = (FeedbackRow.received_at.desc(), FeedbackRow.id.desc()) if newest_first else (FeedbackRow.id,)
    query = query.order_by(*order)
    if limit is not None:
        query = query.limit(limit)
    return [_record(r) for r in session.scalars(query)]


def recent_prompts(session: Session, *, project_id: int, limit: int) -> list[str]:
    """The prompts of the `limit` most recently received items, newest first."""
    rows = session.scalars(
        select(FeedbackRow.prompt)
        .where(FeedbackRow.project_id == project_id)
        .order_by(FeedbackRow.received_at.desc(), FeedbackRow.id.desc())
        .limit(limit)
    )
    return list(rows.all())


def set_feedback_status(
    session: Session, *, item_ids: Sequence[int], status: str, only_from: str | None = None
) -> int:
    """Move items to `status` (only those now in `only_from`, when given); returns how many moved."""
    if status not in FEEDBACK_STATUSES:
        raise TetherInputError(f"feedback status '{status}' is not one of {', '.join(FEEDBACK_STATUSES)}")
    moved = 0
    for chunk in _chunks(list(item_ids)):
        statement = update(FeedbackRow).where(FeedbackRow.id.in_(chunk)).values(status=status)
        if only_from is not None:
            statement = statement.where(FeedbackRow.status == only_from)
        moved += session.execute(statement).rowcount or 0  # type: ignore[attr-defined]
    return moved


def link_grading_tasks(session: Session, *, links: dict[int, int]) -> int:
    """Send new items to review: item id -> its grading task id; items no longer new are left alone."""
    moved = 0
    for item_id, task_id in links.items():
        statement = (
            update(FeedbackRow)
            .where(FeedbackRow.id == item_id, FeedbackRow.status == "new")
            .values(status="review", grading_task_id=task_id)
        )
        moved += session.execute(statement).rowcount or 0  # type: ignore[attr-defined]
    return moved


def feedback_counts(session: Session, *, project_id: int) -> dict[str, int]:
    """Items per status (every status present, zeros included)."""
    rows = session.execute(
        select(FeedbackRow.status, func.count())
        .where(FeedbackRow.project_id == project_id)
        .group_by(FeedbackRow.status)
    ).all()
    counts = Counter({status: 0 for status in FEEDBACK_STATUSES})
    counts.update({status: int(n) for status, n in rows})
    return dict(counts)


def labeled_prompts(session: Session, *, project_id: int, exclude_origin: str = "production") -> list[str]:
    """Prompt texts that have a live comparison task, except tasks of `exclude_origin`, oldest first."""
    rows = session.scalars(
        select(PromptRow.text)
        .join(TaskRow, TaskRow.prompt_id == PromptRow.id)
        .where(TaskRow.project_id == project_id, TaskRow.kind == "compare", TaskRow.origin != exclude_origin)
        .distinct()
        .order_by(PromptRow.text)
    )
    return list(rows.all())
