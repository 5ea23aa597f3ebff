"""An eval run's per-sample results (results.jsonl) and their summary (summary.json).

One row per (case, sample, grader), appended as soon as it is graded, so a run that fails half
way (a judge endpoint that went away) keeps everything graded before the failure. The summary
is computed from the rows alone: per dimension and per stratum, the mean over cases with a 95%
bootstrap interval, where a case's score is the mean over its samples and graders.

    >>> rows = [ResultRow("s", "safety", "safety", "c1", "routine", 0, 0, "p", "r", "gold", 1.0, True)]
    >>> summarize(rows)["dimensions"]["safety"]["mean"]
    1.0
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tether.errors import TetherInputError
from tether.evals.stats import bootstrap_mean

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
RUN_FILE = "run.json"


@dataclass(frozen=True)
class ResultRow:
    """One grader's verdict on one sampled response."""

    suite: str
    """The suite's file stem."""
    dimension: str
    rubric: str
    case_id: str
    stratum: str
    sample_index: int
    seed: int
    """The sampling seed of this sample index."""
    prompt: str
    response: str
    grader: str
    score: float | None
    passed: bool | None = None
    pending: bool = False
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def case_key(self) -> tuple[str, str]:
        """How cases pair across runs: the suite's dimension and the case id."""
        return self.dimension, self.case_id

    @property
    def sample_key(self) -> str:
        """The sample's identity (what `Sample.key` gives), shared by all its graders' rows."""
        return f"{self.dimension}/{self.case_id}/{self.sample_index}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultRow:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def append_rows(path: Path, rows: Iterable[ResultRow]) -> None:
    """Append rows and flush them to disk at once."""
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(row.to_json() + "\n" for row in rows)
        handle.flush()
        os.fsync(handle.fileno())


def read_rows(path: Path) -> list[ResultRow]:
    if not path.is_file():
        raise TetherInputError(f"{path}: no results file; is this an eval run directory?")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(ResultRow.from_dict(json.loads(line)))
            except (json.JSONDecodeError, TypeError) as err:
                raise TetherInputError(f"{path}:{number}: not a result row ({err})") from err
    return rows


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary sibling, then rename it into place."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary sibling, then rename it into place: never half-written."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def rewrite_rows(path: Path, rows: Sequence[ResultRow]) -> None:
    """Replace results.jsonl as a whole (after collecting human grades), never half-written."""
    write_text_atomic(path, "".join(row.to_json() + "\n" for row in rows))


# --- summary --------------------------------------------------------------------------------------------
def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def case_scores(rows: Iterable[ResultRow]) -> dict[tuple[str, str], float]:
    """(dimension, case id) -> mean score over the case's samples and graders; unscored cases left out."""
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        if row.score is not None:
            scores[row.case_key].append(float(row.score))
    return {key: _mean(values) for key, values in scores.items()}


def _group(rows: Sequence[ResultRow], *, n_boot: int, seed: int) -> dict[str, Any]:
    scored = case_scores(rows)
    verdicts = [r.passed for r in rows if r.passed is not None]
    out: dict[str, Any] = {
        "n_cases": len({r.case_key for r in rows}),
        "n_scored_cases": len(scored),
        "n_rows": len(rows),
        "pending": sum(r.pending for r in rows),
        "errors": sum(r.error is not None for r in rows),
        "pass_rate": sum(verdicts) / len(verdicts) if verdicts else None,
        "mean": None,
        "low": None,
        "high": None,
    }
    if scored:
        interval = bootstrap_mean(list(scored.values()), n_boot=n_boot, seed=seed)
        out |= {"mean": interval.mean, "low": interval.low, "high": interval.high}
    return out


def _by(rows: Iterable[ResultRow], attribute: str) -> dict[str, list[ResultRow]]:
    groups: dict[str, list[ResultRow]] = defaultdict(list)
    for row in rows:
        groups[str(getattr(row, attribute))].append(row)
    return dict(sorted(groups.items()))


def summarize(rows: Sequence[ResultRow], *, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Per dimension (and within it per stratum and per grader): mean, 95% interval, pass rate, counts."""
    dimensions: dict[str, Any] = {}
    for dimension, group in _by(rows, "dimension").items():
        entry = _group(group, n_boot=n_boot, seed=seed)
        entry["strata"] = {s: _group(g, n_boot=n_boot, seed=seed) for s, g in _by(group, "stratum").items()}
        entry["graders"] = {name: _group(g, n_boot=0, seed=seed) for name, g in _by(group, "grader").items()}
        dimensions[dimension] = entry
    return {
        "dimensions": dimensions,
        "pending": sum(r.pending for r in rows),
        "errors": sum(r.error is not None for r in rows),
        "n_rows": len(rows),
    }


def dimension_scores(summary: dict[str, Any]) -> dict[str, float | None]:
    """dimension -> mean score, from a summary."""
    return {name: entry.get("mean") for name, entry in summary.get("dimensions", {}).items()}
