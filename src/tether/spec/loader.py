"""Load a spec file, turn validation errors into field-level messages, and hash it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tether.errors import TetherInputError
from tether.spec.model import CROSS_CHECK_SEPARATOR, KL_RECOMMENDED, Spec


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with a spec: where, and which rule it breaks."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(TetherInputError):
    """A spec that does not validate; carries every problem, not just the first."""

    def __init__(self, source: str, problems: list[SpecProblem]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the spec\n{lines}")


def format_loc(loc: tuple[int | str, ...]) -> str:
    """('dimensions', 2, 'rubric') -> 'dimensions[2].rubric'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


_FRIENDLY = {
    "missing": "is required",
    "extra_forbidden": "unknown key",
    "string_too_short": "must not be empty",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
}


def _problem_from_error(err: dict[str, Any]) -> list[SpecProblem]:
    path = format_loc(tuple(err["loc"]))
    kind = err["type"]
    if kind == "value_error":
        text = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
        problems = []
        for piece in text.split(CROSS_CHECK_SEPARATOR):
            # Cross-field checks carry their own path as '@field.path: message'.
            if piece.startswith("@") and ": " in piece:
                sub_path, message = piece[1:].split(": ", 1)
                problems.append(SpecProblem(sub_path, message))
            else:
                problems.append(SpecProblem(path, piece))
        return problems
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = next(iter(err["ctx"].values()))
        words = {
            "greater_than_equal": "at least",
            "less_than_equal": "at most",
            "greater_than": "greater than",
            "less_than": "less than",
        }
        return [SpecProblem(path, f"must be {words[kind]} {bound} (got {err.get('input')!r})")]
    return [SpecProblem(path, _FRIENDLY.get(kind, err["msg"]))]


def parse_spec(data: Any, *, source: str = "<spec>") -> Spec:
    """Validate already-parsed YAML/JSON data; raises SpecError with every problem."""
    if not isinstance(data, dict):
        raise SpecError(source, [SpecProblem("", "the spec must be a YAML mapping at the top level")])
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        problems: list[SpecProblem] = []
        for err in exc.errors(include_url=False):
            problems.extend(_problem_from_error(dict(err)))
        raise SpecError(source, problems) from None


def load_spec(path: Path | str) -> Spec:
    """Read and validate a spec YAML file."""
    path = Path(path)
    if not path.is_file():
        raise TetherInputError(f"{path}: spec file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(str(path), [SpecProblem("", f"not valid YAML{where}: {problem}")]) from None
    return parse_spec(data, source=str(path))


def canonical_json(spec: Spec) -> str:
    """The resolved spec as canonical JSON: sorted keys, no whitespace, defaults filled in."""
    return json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def spec_hash(spec: Spec) -> str:
    """Content hash of the resolved spec; the spec version id every artifact records.

    It hashes the validated model, so key order, comments, whitespace and spelling out a
    default value do not change it, while any change of content does.
    """
    return hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()


def short_hash(full: str) -> str:
    return full[:12]


def spec_warnings(spec: Spec) -> list[str]:
    """Things that are allowed but worth a second look."""
    out = []
    low, high = KL_RECOMMENDED
    if not low <= spec.rl.kl_budget_nats <= high:
        out.append(
            f"rl.kl_budget_nats: {spec.rl.kl_budget_nats} is outside the recommended {low}-{high} nats"
        )
    if spec.reward_model.min_pairs < 5000:
        out.append(f"reward_model.min_pairs: {spec.reward_model.min_pairs} is below the usual 5,000 pairs")
    critical = [d.id for d in spec.dimensions if d.critical]
    for dim in spec.dimensions:
        if dim.critical and dim.gate.min_accuracy < spec.reward_model.min_accuracy:
            out.append(
                f"dimensions[{dim.id}].gate.min_accuracy: critical dimension gated below the overall "
                f"minimum ({dim.gate.min_accuracy} < {spec.reward_model.min_accuracy})"
            )
    if not critical:
        out.append("dimensions: no dimension is marked critical")
    if spec.trade_offs.priority and set(spec.trade_offs.priority) != set(spec.dimension_ids):
        missing = sorted(set(spec.dimension_ids) - set(spec.trade_offs.priority))
        out.append(f"trade_offs.priority: does not rank {', '.join(missing)}")
    return out
