"""`tether label import`: judgments collected elsewhere, all or nothing.

Each line is one JSON object::

    {"rater": "ana", "assignment": 123, "choice": "A", "strength": 2,
     "rationale": "A answers correctly; B invents a capital.", "seconds": 31.5,
     "idempotency_key": "ana-123"}

`choice` is in the order the rater saw. Every line is checked, and every problem reported with
its line number, before the import commits; re-importing the same file writes nothing new.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.errors import TetherInputError
from tether.labeling.context import LabelingContext
from tether.labeling.submit import submit_judgment
from tether.project import Project
from tether.store.raters import get_rater

REQUIRED: dict[str, type] = {
    "rater": str,
    "assignment": int,
    "choice": str,
    "strength": int,
    "rationale": str,
}
OPTIONAL: dict[str, tuple[type, ...]] = {"seconds": (int, float), "idempotency_key": (str,)}


@dataclass(frozen=True)
class ImportResult:
    written: int
    replayed: int


def _row(line: str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TetherInputError(f"not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise TetherInputError("must be a JSON object")
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise TetherInputError(f"unknown keys {', '.join(unknown)}")
    for key, kind in REQUIRED.items():
        if key not in data:
            raise TetherInputError(f"missing '{key}'")
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise TetherInputError(f"'{key}' must be a {kind.__name__}")
    for key, kinds in OPTIONAL.items():
        if key in data and (not isinstance(data[key], kinds) or isinstance(data[key], bool)):
            raise TetherInputError(f"'{key}' has the wrong type")
    return data


def import_judgments(project: Project, ctx: LabelingContext, path: Path) -> ImportResult:
    if not path.is_file():
        raise TetherInputError(f"{path}: file not found")
    problems: list[str] = []
    written = replayed = 0
    with project.store.session() as session:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = _row(line)
                rater = get_rater(session, project_id=project.project_id, name=row["rater"])
                result = submit_judgment(
                    session,
                    ctx,
                    rater,
                    assignment_id=row["assignment"],
                    choice=row["choice"],
                    strength=row["strength"],
                    rationale=row["rationale"],
                    seconds=float(row.get("seconds", 0.0)),
                    idempotency_key=row.get("idempotency_key")
                    or f"import-{row['rater']}-{row['assignment']}",
                )
            except TetherInputError as exc:
                problems.append(f"line {number}: {exc}")
                continue
            replayed += result.replayed
            written += not result.replayed
        if problems:
            # Raising inside the session rolls back every line of this import.
            raise TetherInputError(
                f"{path}: {len(problems)} bad line(s); nothing was imported\n"
                + "\n".join(f"  - {p}" for p in problems)
            )
    return ImportResult(written, replayed)
