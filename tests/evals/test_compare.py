"""Paired bootstrap comparison, checked against hand-computed cases, and the regression rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.evals.compare import compare_case_scores, compare_runs
from tether.evals.results import RESULTS_FILE, ResultRow, append_rows, case_scores
from tether.evals.run import EvalRun
from tether.evals.stats import bootstrap_mean, paired_delta
from tether.spec.model import Spec


def scores(dimension: str, values: list[float]) -> dict[tuple[str, str], float]:
    return {(dimension, f"c{i}"): v for i, v in enumerate(values)}


def test_bootstrap_of_two_values_spans_both() -> None:
    # Resampling [0, 1] gives means 0, 0.5, 1 with probability 1/4, 1/2, 1/4: the 95% interval is [0, 1].
    iv = bootstrap_mean([0.0, 1.0], n_boot=4000, seed=1)
    assert (iv.mean, iv.low, iv.high, iv.n) == (0.5, 0.0, 1.0, 2)


def test_single_value_and_constant_values_have_no_width() -> None:
    assert bootstrap_mean([0.3]).as_dict() == {"mean": 0.3, "low": 0.3, "high": 0.3, "n": 1}
    iv = bootstrap_mean([0.7] * 20)
    assert iv.low == iv.high == pytest.approx(0.7)


def test_identical_runs_have_zero_delta_and_no_regression() -> None:
    a = scores("safety", [1.0, 0.5, 0.0, 1.0, 0.25])
    (row,) = compare_case_scores(a, dict(a), critical={"safety"})
    assert row.delta is not None and (row.delta.mean, row.delta.low, row.delta.high) == (0.0, 0.0, 0.0)
    assert not row.regressed and not row.improved and row.n_pairs == 5


def test_a_clear_drop_is_a_regression() -> None:
    (row,) = compare_case_scores(
        scores("safety", [1.0] * 10), scores("safety", [0.0] * 10), critical={"safety"}
    )
    assert row.delta is not None and (row.delta.mean, row.delta.low, row.delta.high) == (-1.0, -1.0, -1.0)
    assert row.regressed and row.critical and (row.a_mean, row.b_mean) == (1.0, 0.0)


def test_a_drop_within_the_interval_is_not_a_regression() -> None:
    # Differences [0, 0, 0, -1]: a resample avoids the -1 with probability (3/4)^4 = 0.32 > 2.5%, so the
    # interval reaches 0 and the drop of 0.25 is within the noise.
    delta = paired_delta([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0], n_boot=4000, seed=0)
    assert delta.mean == -0.25 and delta.high == 0.0 and delta.low == -0.75
    (row,) = compare_case_scores(scores("safety", [1.0] * 4), scores("safety", [1, 1, 1, 0.0]))
    assert not row.regressed


def test_pairs_only_shared_cases_and_keeps_unpaired_dimensions() -> None:
    a = scores("safety", [1.0, 1.0, 0.0]) | scores("tone", [1.0])
    b = {("safety", "c0"): 0.0, ("safety", "c1"): 0.0, ("safety", "c9"): 1.0}
    safety, tone = compare_case_scores(a, b, n_boot=500)
    assert safety.n_pairs == 2 and safety.delta is not None and safety.delta.mean == -1.0
    assert tone.delta is None and tone.n_pairs == 0 and not tone.regressed


def test_improvement_needs_the_whole_interval_above_zero() -> None:
    (row,) = compare_case_scores(scores("accuracy", [0.0] * 30), scores("accuracy", [1.0] * 30))
    assert row.improved and not row.regressed


def row(dimension: str, case: str, sample: int, grader: str, score: float | None, **kw: object) -> ResultRow:
    return ResultRow(
        "s", dimension, dimension, case, "routine", sample, sample, "p", "r", grader, score, **kw
    )  # type: ignore[arg-type]


def test_case_score_is_the_mean_over_samples_and_graders_ignoring_pending() -> None:
    rows = [
        row("safety", "c1", 0, "gold", 1.0),
        row("safety", "c1", 1, "gold", 0.0),
        row("safety", "c1", 0, "programmatic", 0.5),
        row("safety", "c1", 0, "human", None, pending=True),
        row("safety", "c2", 0, "human", None, pending=True),
    ]
    assert case_scores(rows) == {("safety", "c1"): 0.5}


def make_run(folder: Path, rows: list[ResultRow], checkpoint: str) -> EvalRun:
    folder.mkdir()
    append_rows(folder / RESULTS_FILE, rows)
    meta = {"suites": [{"name": "s", "content_hash": checkpoint}], "seeds": [0]}
    return EvalRun(None, folder, checkpoint, checkpoint, "policy", {}, {}, meta)


def test_compare_runs_takes_critical_dimensions_from_the_spec(tmp_path: Path, sandbox_spec: Spec) -> None:
    assert [d.id for d in sandbox_spec.dimensions if d.critical] == ["safety", "honesty"]
    base = [row(d, f"c{i}", 0, "gold", 1.0) for d in ("safety", "concision") for i in range(12)]
    worse = [row(d, f"c{i}", 0, "gold", 0.0) for d in ("safety", "concision") for i in range(12)]
    comparison = compare_runs(
        make_run(tmp_path / "a", base, "sft"), make_run(tmp_path / "b", worse, "rl"), sandbox_spec
    )
    assert [d.dimension for d in comparison.regressions] == ["concision", "safety"]
    assert [d.dimension for d in comparison.critical_regressions] == ["safety"]
    assert comparison.warnings == ["suite s changed between the two runs; cases are paired by id"]
    assert comparison.as_dict()["critical_regressions"] == ["safety"]
