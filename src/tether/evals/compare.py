"""Checkpoint comparison: paired bootstrap deltas per dimension, and the regression rule.

Cases pair across two runs by (suite dimension, case id); a case's score is the mean over its
samples and graders. For each dimension the delta is mean(B − A) over the paired cases, with a 95%
interval from resampling the pairs. A dimension REGRESSED when its whole interval lies below zero,
i.e. it dropped by more than its own uncertainty; a regression on a critical spec dimension is what
makes `tether eval compare` exit 3.

    >>> rows = compare_case_scores({("safety", "c1"): 1.0}, {("safety", "c1"): 0.0}, critical={"safety"})
    >>> rows[0].delta.mean, rows[0].regressed, rows[0].critical
    (-1.0, True, True)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tether.evals.results import case_scores
from tether.evals.stats import Interval, paired_delta

if TYPE_CHECKING:
    from tether.evals.run import EvalRun
    from tether.spec.model import Spec

CaseKey = tuple[str, str]


@dataclass(frozen=True)
class DimensionDelta:
    """One dimension of a comparison."""

    dimension: str
    critical: bool
    a_mean: float | None
    """A's mean over the paired cases."""
    b_mean: float | None
    delta: Interval | None
    """mean(B − A) over paired cases and its 95% interval; None when no case is in both runs."""

    @property
    def n_pairs(self) -> int:
        return self.delta.n if self.delta else 0

    @property
    def regressed(self) -> bool:
        """The whole interval is below zero."""
        return self.delta is not None and self.delta.high < 0

    @property
    def improved(self) -> bool:
        return self.delta is not None and self.delta.low > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "critical": self.critical,
            "a": self.a_mean,
            "b": self.b_mean,
            "delta": self.delta.as_dict() if self.delta else None,
            "n_pairs": self.n_pairs,
            "regressed": self.regressed,
            "improved": self.improved,
        }


@dataclass(frozen=True)
class Comparison:
    """B against A, dimension by dimension."""

    a: str
    """Label of the baseline run (its checkpoint)."""
    b: str
    dimensions: list[DimensionDelta]
    warnings: list[str] = field(default_factory=list)
    a_run: str | None = None
    """The eval_run artifact ids (or run directories) compared."""
    b_run: str | None = None

    @property
    def regressions(self) -> list[DimensionDelta]:
        return [d for d in self.dimensions if d.regressed]

    @property
    def critical_regressions(self) -> list[DimensionDelta]:
        return [d for d in self.dimensions if d.regressed and d.critical]

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "a_run": self.a_run,
            "b_run": self.b_run,
            "dimensions": [d.as_dict() for d in self.dimensions],
            "regressions": [d.dimension for d in self.regressions],
            "critical_regressions": [d.dimension for d in self.critical_regressions],
            "warnings": self.warnings,
        }


def compare_case_scores(
    a: Mapping[CaseKey, float],
    b: Mapping[CaseKey, float],
    *,
    critical: Collection[str] = (),
    n_boot: int = 2000,
    seed: int = 0,
) -> list[DimensionDelta]:
    """Per-dimension paired deltas of two runs' case scores, dimensions in sorted order."""
    out = []
    for dimension in sorted({d for d, _ in a} | {d for d, _ in b}):
        paired = sorted(k for k in a.keys() & b.keys() if k[0] == dimension)
        if not paired:
            out.append(DimensionDelta(dimension, dimension in critical, None, None, None))
            continue
        xs, ys = [a[k] for k in paired], [b[k] for k in paired]
        delta = paired_delta(xs, ys, n_boot=n_boot, seed=seed)
        out.append(
            DimensionDelta(dimension, dimension in critical, sum(xs) / len(xs), sum(ys) / len(ys), delta)
        )
    return out


def _suite_warnings(a: EvalRun, b: EvalRun) -> list[str]:
    hashes_a = {s["name"]: s["content_hash"] for s in a.meta.get("suites", [])}
    hashes_b = {s["name"]: s["content_hash"] for s in b.meta.get("suites", [])}
    changed = sorted(n for n in hashes_a.keys() & hashes_b.keys() if hashes_a[n] != hashes_b[n])
    out = [f"suite {n} changed between the two runs; cases are paired by id" for n in changed]
    if a.meta.get("seeds") != b.meta.get("seeds"):
        out.append("the runs used different sampling seeds")
    return out


def compare_runs(a: EvalRun, b: EvalRun, spec: Spec, *, n_boot: int = 2000, seed: int = 0) -> Comparison:
    """B against A; critical dimensions come from the spec."""
    critical = {d.id for d in spec.dimensions if d.critical}
    dims = compare_case_scores(
        case_scores(a.rows()), case_scores(b.rows()), critical=critical, n_boot=n_boot, seed=seed
    )
    return Comparison(
        a.checkpoint,
        b.checkpoint,
        dims,
        _suite_warnings(a, b),
        a.artifact_id or str(a.run_dir),
        b.artifact_id or str(b.run_dir),
    )
