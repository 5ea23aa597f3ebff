"""Ingesting flagged production outputs: `tether feedback ingest FILE` and `POST /api/v1/feedback`.

    tether feedback ingest flagged.jsonl

One JSON object per line (blank lines are skipped)::

    {"idempotency_key": "req-8f2c", "prompt": "...", "response": "...", "model_version": "rl-2024-06-01",
     "reason": "safety: user reported a harmful answer", "user_metadata": {"locale": "de"}}

Both paths validate each item with `FlaggedItem`. A file keeps its good lines and reports every bad
one with its line number and what is wrong; each good line is stored once, so ingesting the same file
again stores nothing new. `user_metadata` is dropped on arrival unless the spec's
`feedback.store_user_metadata` is true. `meta` is optional context about the prompt: sandbox streams
put the prompt's ground truth there (`SandboxPrompt.to_meta()`), so simulated graders and raters can
judge the item later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tether.conversation import check_messages, fill_prompt
from tether.errors import TetherInputError
from tether.project import Project
from tether.spec.model import FeedbackPolicy
from tether.store.feedback import FeedbackOutcome, NewFeedback, add_feedback

MAX_TEXT = 50_000
"""Longest prompt or response accepted, in characters."""
MAX_META_CHARS = 10_000
"""Largest `user_metadata` or `meta` object, as JSON text."""


class FlaggedItem(BaseModel):
    """One flagged production output, as a file line or an HTTP item carries it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str = Field(min_length=1, max_length=MAX_TEXT)
    """The prompt the model answered: the last user turn of ``messages`` when given (filled in from
    them when left out)."""
    messages: list[dict[str, str]] | None = Field(default=None, max_length=200)
    """The conversation the model answered (`tether.conversation`), for a multi-turn item."""
    response: str = Field(min_length=1, max_length=MAX_TEXT)
    """The model's flagged response."""
    model_version: str = Field(min_length=1, max_length=200)
    """Which model (checkpoint, deployment) wrote the response."""
    reason: str = Field(min_length=1, max_length=2_000)
    """Why it was flagged; naming a spec dimension ("safety: ...") routes its review to that rubric."""
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    """Unique per item: a retry with the same key stores nothing new. Required in files; over HTTP a
    single item may send it as the Idempotency-Key header instead."""
    user_metadata: dict[str, Any] | None = None
    """Optional data about the user; stored only when the spec's feedback.store_user_metadata is true."""
    meta: dict[str, Any] | None = None
    """Optional context about the prompt, e.g. the sandbox's ground truth."""

    _prompt_from_messages = model_validator(mode="before")(fill_prompt)

    @model_validator(mode="after")
    def _messages_end_with_prompt(self) -> FlaggedItem:
        check_messages(self.messages, self.prompt)
        return self

    @field_validator("prompt", "response", "model_version", "reason")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if "\x00" in value:
            raise ValueError("contains a NUL (\\x00) character")
        return value

    @field_validator("idempotency_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or "\x00" in value):
            raise ValueError("must be printable text, not blank")
        return value

    @field_validator("user_metadata", "meta")
    @classmethod
    def _small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value)) > MAX_META_CHARS:
            raise ValueError(f"is over {MAX_META_CHARS} characters as JSON")
        return value


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a submitted item; never echoes the submitted value."""

    field: str
    """Where: "prompt", "items[3].reason", ..."""
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _join(where: str, path: str) -> str:
    return f"{where}.{path}" if where and path else where or path or "item"


def check_item(data: object, *, where: str = "", key: str | None = None) -> FlaggedItem | list[Problem]:
    """The item in `data` (a parsed JSON value), or what is wrong with it, each field named from
    `where`; `key` (an Idempotency-Key header) fills a missing idempotency_key."""
    if not isinstance(data, dict):
        return [Problem(where or "item", f"expected a JSON object, got {type(data).__name__}")]
    if key is not None:
        if data.get("idempotency_key", key) != key:
            return [Problem(_join(where, "idempotency_key"), "differs from the Idempotency-Key header")]
        data = {**data, "idempotency_key": key}
    try:
        item = FlaggedItem.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            path = ".".join(str(p) for p in err["loc"])
            problems.append(Problem(_join(where, path), message.removeprefix("Value error, ")))
        return problems
    if item.idempotency_key is None:
        return [Problem(_join(where, "idempotency_key"), "required")]
    return item


def to_new_feedback(item: FlaggedItem, policy: FeedbackPolicy) -> NewFeedback:
    """What is stored: user metadata only when the spec allows it."""
    if item.idempotency_key is None:
        raise TetherInputError("a flagged item needs an idempotency_key before it is stored")
    return NewFeedback(
        idempotency_key=item.idempotency_key,
        prompt=item.prompt,
        messages=item.messages if item.messages and len(item.messages) > 1 else None,
        response=item.response,
        model_version=item.model_version,
        reason=item.reason,
        user_meta=item.user_metadata if policy.store_user_metadata else None,
        prompt_meta=item.meta,
    )


@dataclass(frozen=True)
class Rejected:
    line: int
    """1-based line number in the file."""
    reason: str


@dataclass(frozen=True)
class IngestReport:
    path: Path
    lines: int
    """Non-blank lines read."""
    stored: int
    """Items stored by this call."""
    duplicates: int
    """Good lines whose key was already stored (by an earlier call, or earlier in the file)."""
    rejected: list[Rejected] = field(default_factory=list)


def parse_lines(text: str) -> tuple[list[tuple[int, FlaggedItem]], list[Rejected]]:
    """Good items with their line numbers, and the bad lines with why."""
    good: list[tuple[int, FlaggedItem]] = []
    bad: list[Rejected] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(Rejected(number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        checked = check_item(data)
        if isinstance(checked, FlaggedItem):
            good.append((number, checked))
        else:
            bad.append(Rejected(number, "; ".join(str(p) for p in checked)))
    return good, bad


def ingest_file(project: Project, path: Path) -> IngestReport:
    """Store the file's good lines (each once) and report the bad ones; all good lines are written in
    one transaction, so an interrupted ingest stores nothing and can simply be run again."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TetherInputError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise TetherInputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    good, bad = parse_lines(text)
    items = [to_new_feedback(item, project.spec.feedback) for _, item in good]
    project_id = project.project_id
    with project.store.session() as session:
        outcomes = add_feedback(session, project_id=project_id, items=items, spec_hash=project.spec_hash)
    conflicts = [
        Rejected(number, f"idempotency_key {o.idempotency_key!r} is already stored with other content")
        for (number, _), o in zip(good, outcomes, strict=True)
        if o.outcome == "conflict"
    ]
    return IngestReport(
        path=path,
        lines=len(good) + len(bad),
        stored=_count(outcomes, "stored"),
        duplicates=_count(outcomes, "duplicate"),
        rejected=sorted(bad + conflicts, key=lambda r: r.line),
    )


def _count(outcomes: list[FeedbackOutcome], outcome: str) -> int:
    return sum(o.outcome == outcome for o in outcomes)
