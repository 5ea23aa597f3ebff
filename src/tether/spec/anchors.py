"""Expert anchors: labelled comparisons that calibrate raters against the spec.

One JSON object per line of `anchors.jsonl`. Disagreement with the experts is measured on
the `clear_cut` anchors only; close calls teach, but do not grade.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tether.conversation import check_messages, fill_prompt
from tether.errors import TetherInputError
from tether.spec.loader import format_loc
from tether.spec.model import Spec

Stratum = Literal["routine", "hard", "adversarial", "edge"]


class Anchor(BaseModel):
    """One expert-labelled comparison."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    """Stable identifier of the anchor."""
    prompt: str = Field(min_length=1)
    """The prompt both responses answer: the last user turn when the anchor is a conversation
    (filled in from ``messages`` when left out)."""
    messages: list[dict[str, str]] | None = None
    """The conversation both responses answer (`tether.conversation`); None for a single prompt."""
    response_a: str = Field(min_length=1)
    """The response shown as A by default."""
    response_b: str = Field(min_length=1)
    """The response shown as B by default."""
    label: Literal["A", "B", "tie"]
    """The expert verdict."""
    dimension: str
    """The spec dimension the anchor teaches."""
    stratum: Stratum = "routine"
    """Difficulty stratum of the prompt."""
    clear_cut: bool = True
    """Whether experts consider the verdict beyond reasonable disagreement."""
    explanation: str = Field(min_length=1)
    """Why the verdict is right, shown to the rater after answering."""

    _prompt_from_messages = model_validator(mode="before")(fill_prompt)

    @model_validator(mode="after")
    def _messages_end_with_prompt(self) -> Anchor:
        check_messages(self.messages, self.prompt)
        return self


def load_anchors(path: Path, *, spec: Spec | None = None) -> list[Anchor]:
    """Read anchors, reporting every bad line by number; checks dimensions against `spec`."""
    if not path.is_file():
        raise TetherInputError(f"{path}: anchors file not found")
    anchors: list[Anchor] = []
    problems: list[str] = []
    known = set(spec.dimension_ids) if spec else None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            anchor = Anchor.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not valid JSON ({exc.msg})")
            continue
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                problems.append(f"line {number}: {format_loc(tuple(err['loc'])) or 'row'}: {err['msg']}")
            continue
        if known is not None and anchor.dimension not in known:
            problems.append(f"line {number}: dimension '{anchor.dimension}' is not in the spec")
        if anchor.clear_cut and anchor.label == "tie":
            problems.append(f"line {number}: a clear-cut anchor cannot be a tie")
        anchors.append(anchor)
    ids = [a.id for a in anchors]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        problems.append(f"duplicate anchor ids: {', '.join(dupes)}")
    if problems:
        raise TetherInputError(
            f"{path}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return anchors


def anchor_problems(anchors: list[Anchor], spec: Spec) -> list[str]:
    """Policy problems with an otherwise valid anchor set."""
    clear = sum(a.clear_cut for a in anchors)
    need = spec.labeling.calibration_size
    out = []
    if clear < need:
        out.append(f"only {clear} clear-cut anchors; labeling.calibration_size needs {need}")
    return out


def write_anchors(path: Path, anchors: list[Anchor]) -> None:
    """Write anchors atomically (a crash never leaves a half-written file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    # exclude_none: an anchor without messages is written (and keyed) exactly as before they existed
    tmp.write_text("".join(a.model_dump_json(exclude_none=True) + "\n" for a in anchors), encoding="utf-8")
    tmp.replace(path)
