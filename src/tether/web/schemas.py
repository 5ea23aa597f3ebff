"""The documented shapes of the labeling API's replies, for its OpenAPI schema.

The hot routes build plain dicts and send them as they are (see `api.next_assignment`), so these
models document the payload rather than validate it on every request; a test validates real
payloads against them with ``extra="forbid"``, so the schema cannot drift from what is sent."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MessageOut(_Out):
    """One turn of the conversation the two replies answer."""

    role: Literal["system", "user", "assistant"]
    content: str


class RubricLevelOut(_Out):
    score: int
    description: str


class RubricOut(_Out):
    """A spec dimension's rubric, best level first."""

    id: str
    description: str
    critical: bool
    levels: list[RubricLevelOut]


class CalibrationProgress(_Out):
    done: int
    total: int


class AssignmentOut(_Out):
    """A rater's next item."""

    assignment_id: int
    purpose: Literal["calibration", "task"] = Field(
        description="`calibration` while the rater's calibration anchors are unanswered"
    )
    prompt: str = Field(description="the last user turn (its meaning before conversations)")
    messages: list[MessageOut] = Field(
        description="the whole conversation, oldest first, the spec's system prompt first when it has none"
    )
    left: str = Field(description="reply A, as shown (left)")
    right: str = Field(description="reply B, as shown (right)")
    dimension: str = Field(description="the spec dimension the comparison is judged on")
    calibration: CalibrationProgress | None = Field(description="progress through calibration, or null")
    rubrics: list[RubricOut] = Field(description="the item's dimension first, then the others")


class ExpertFeedback(_Out):
    expert_choice: str
    explanation: str
    correct: bool


class JudgmentOut(_Out):
    """A judgment as recorded; `feedback` is the expert's answer to a calibration anchor."""

    judgment_id: int
    assignment_id: int
    choice: Literal["A", "B", "tie"]
    strength: int
    replayed: bool = Field(description="true when an earlier request with this Idempotency-Key made it")
    feedback: ExpertFeedback | None
    status: str | None = Field(description="the rater's status after this judgment, when it is decided")
