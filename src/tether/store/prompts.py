"""Repository functions for the prompt pool."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from tether.conversation import Prompt, conversation, from_stored, last_user_turn
from tether.errors import TetherInputError
from tether.store.models import PromptRow, utcnow

SPLITS = ("pool", "eval", "anchor")
STRATA = ("routine", "hard", "adversarial", "edge")


@dataclass(frozen=True)
class NewPrompt:
    """A prompt to add to the pool."""

    key: str
    text: str
    """The last user turn (the whole prompt for a single string)."""
    dimension: str
    stratum: str
    split: str = "pool"
    source: str = "import"
    meta: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, str]] | None = None
    """Every message of a conversation (`tether.conversation.stored_messages`); None for one user turn."""


@dataclass(frozen=True)
class PromptRecord:
    id: int
    key: str
    text: str
    dimension: str
    stratum: str
    split: str
    source: str
    meta: dict[str, Any]
    spec_hash: str
    messages: list[dict[str, str]] | None = None

    @property
    def prompt(self) -> Prompt:
        """What the model reads: the conversation when there is one, else the text."""
        return from_stored(self.text, self.messages)


def _record(row: PromptRow) -> PromptRecord:
    return PromptRecord(
        id=row.id,
        key=row.key,
        text=row.text,
        dimension=row.dimension,
        stratum=row.stratum,
        split=row.split,
        source=row.source,
        meta=dict(row.meta or {}),
        spec_hash=row.spec_hash,
        messages=list(row.messages) if row.messages else None,
    )


def _check(prompt: NewPrompt, index: int) -> None:
    if not prompt.key or not prompt.text.strip():
        raise TetherInputError(f"prompts[{index}]: key and text must not be empty")
    if prompt.messages is not None:
        checked = conversation(prompt.messages, where=f"prompts[{index}].messages")
        if last_user_turn(checked) != prompt.text:
            raise TetherInputError(f"prompts[{index}].text: must be the conversation's last user turn")
    if prompt.stratum not in STRATA:
        raise TetherInputError(
            f"prompts[{index}].stratum: '{prompt.stratum}' is not one of {', '.join(STRATA)}"
        )
    if prompt.split not in SPLITS:
        raise TetherInputError(f"prompts[{index}].split: '{prompt.split}' is not one of {', '.join(SPLITS)}")


def add_prompts(session: Session, *, project_id: int, prompts: Sequence[NewPrompt], spec_hash: str) -> int:
    """Add prompts, skipping keys already present (idempotent); returns how many were new.

    Every prompt is validated before anything is written.
    """
    for index, prompt in enumerate(prompts):
        _check(prompt, index)
    existing = set(session.scalars(select(PromptRow.key).where(PromptRow.project_id == project_id)).all())
    now = utcnow()
    rows = []
    for prompt in prompts:
        if prompt.key in existing:
            continue
        existing.add(prompt.key)
        rows.append(
            {
                "project_id": project_id,
                "key": prompt.key,
                "text": prompt.text,
                "messages": prompt.messages,
                "dimension": prompt.dimension,
                "stratum": prompt.stratum,
                "split": prompt.split,
                "source": prompt.source,
                "meta": prompt.meta,
                "spec_hash": spec_hash,
                "created_at": now,
            }
        )
    if rows:
        session.execute(insert(PromptRow), rows)
    return len(rows)


def list_prompts(
    session: Session,
    *,
    project_id: int,
    split: str | None = None,
    dimension: str | None = None,
    stratum: str | None = None,
    limit: int | None = None,
) -> list[PromptRecord]:
    """Prompts in insertion order, optionally filtered."""
    query = select(PromptRow).where(PromptRow.project_id == project_id)
    if split is not None:
        query = query.where(PromptRow.split == split)
    if dimension is not None:
        query = query.where(PromptRow.dimension == dimension)
    if stratum is not None:
        query = query.where(PromptRow.stratum == stratum)
    query = query.order_by(PromptRow.id)
    if limit is not None:
        query = query.limit(limit)
    return [_record(r) for r in session.scalars(query)]


def prompt_counts(session: Session, *, project_id: int, split: str | None = None) -> Counter[tuple[str, str]]:
    """Number of prompts per (dimension, stratum)."""
    query = select(PromptRow.dimension, PromptRow.stratum, func.count()).where(
        PromptRow.project_id == project_id
    )
    if split is not None:
        query = query.where(PromptRow.split == split)
    rows = session.execute(query.group_by(PromptRow.dimension, PromptRow.stratum)).all()
    return Counter({(dim, stratum): count for dim, stratum, count in rows})


def prompt_ids_by_key(session: Session, *, project_id: int, keys: Sequence[str]) -> dict[str, int]:
    """Prompt ids for the given keys (keys not in the pool are absent from the result)."""
    if not keys:
        return {}
    rows = session.execute(
        select(PromptRow.key, PromptRow.id).where(
            PromptRow.project_id == project_id, PromptRow.key.in_(list(keys))
        )
    ).all()
    return {key: pid for key, pid in rows}
