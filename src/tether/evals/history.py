"""Past eval runs: listing them, finding a checkpoint's latest run, and filling in human grades.

`collect_run` is `tether eval collect RUN`: it reads the grades people submitted for the run's
pending human-graded samples, rewrites results.jsonl and summary.json (never half-written), and
registers the collected run as a new eval_run artifact whose parents are the run it completes and
the evaluated policy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tether.artifacts import EVAL_RUN_KIND, POLICY_KIND, RL_CHECKPOINT_KIND, latest
from tether.errors import TetherInputError
from tether.evals.graders.human import NAME as HUMAN
from tether.evals.graders.human import collect_grades, collected_result
from tether.evals.results import (
    RESULTS_FILE,
    RUN_FILE,
    SUMMARY_FILE,
    ResultRow,
    rewrite_rows,
    summarize,
    write_json_atomic,
)
from tether.evals.run import EvalRun, load_eval_run, register_eval_run
from tether.store import ArtifactRecord, latest_artifact, list_artifacts

if TYPE_CHECKING:
    from tether.project import Project


def list_eval_runs(project: Project) -> list[ArtifactRecord]:
    """Registered eval runs, oldest first."""
    with project.store.session() as session:
        return list_artifacts(session, project_id=project.project_id, kind=EVAL_RUN_KIND)


def latest_run_of(project: Project, checkpoint_artifact: str) -> EvalRun | None:
    """The newest registered eval run of the policy artifact ``checkpoint_artifact``."""
    with project.store.session() as session:
        record = latest_artifact(
            session,
            project_id=project.project_id,
            kind=EVAL_RUN_KIND,
            where_meta={"checkpoint_artifact": checkpoint_artifact},
        )
    return None if record is None else load_eval_run(project, record.id)


@dataclass(frozen=True)
class Collected:
    run: EvalRun
    filled: int
    """Samples whose human grades arrived in this collection."""
    still_pending: int


def _collect_rows(project: Project, rows: list[ResultRow]) -> tuple[list[ResultRow], int]:
    waiting = [r for r in rows if r.grader == HUMAN and r.pending and "source_key" in r.details]
    grades = collect_grades(project, [str(r.details["source_key"]) for r in waiting])
    filled, out = 0, []
    for row in rows:
        key = str(row.details.get("source_key", ""))
        if row.grader == HUMAN and row.pending and key in grades:
            result = collected_result(grades[key], int(row.details.get("raters_needed", 1)), key)
            filled += not result.pending
            row = replace(row, score=result.score, passed=result.passed, pending=result.pending,
                          details={**row.details, **result.details})  # fmt: skip
        out.append(row)
    return out, filled


def collect_run(project: Project, ref: str) -> Collected:
    """Fill in the human grades submitted so far; registers the collected run when anything changed."""
    run = load_eval_run(project, ref)
    rows, filled = _collect_rows(project, run.rows())
    if not filled:
        return Collected(run, 0, run.pending)
    rewrite_rows(run.run_dir / RESULTS_FILE, rows)
    summary = summarize(rows) | {"status": run.summary.get("status", "completed"), "reason": None}
    write_json_atomic(run.run_dir / SUMMARY_FILE, summary)
    meta = json.loads((run.run_dir / RUN_FILE).read_text(encoding="utf-8"))
    artifact = register_eval_run(
        project, run.run_dir, meta, summary, parents=[run.artifact_id, run.checkpoint_artifact]
    )
    collected = load_eval_run(project, artifact.id)
    return Collected(collected, filled, collected.pending)


def _latest_id(project: Project, kind: str) -> str | None:
    record = latest(project, kind)
    return None if record is None else record.id


def _run_of(project: Project, checkpoint: str, how: str) -> EvalRun:
    run = latest_run_of(project, checkpoint)
    if run is None:
        raise TetherInputError(
            f"no eval run of {checkpoint} yet; run `tether eval run --checkpoint {how}` first"
        )
    return run


def comparison_pairs(
    project: Project, a: str | None = None, b: str | None = None
) -> list[tuple[EvalRun, EvalRun]]:
    """The (A, B) runs `tether eval compare` shows: A against B, plus SFT against B when A is not SFT.

    A defaults to the latest run of the SFT policy, B to the latest run of the latest RL checkpoint;
    a default that does not exist is an error that says which `tether eval run` makes it. With both
    runs given, the SFT comparison is added when the SFT policy has a run, else left out."""
    sft = _latest_id(project, POLICY_KIND)
    if b is None:
        rl = _latest_id(project, RL_CHECKPOINT_KIND)
        if rl is None:
            raise TetherInputError(
                "the project has no RL checkpoint yet; train one with `tether rl run`, then "
                "`tether eval run --checkpoint latest`, or pass the two eval runs to compare"
            )
        b_run = _run_of(project, rl, rl)
    else:
        b_run = load_eval_run(project, b)
    if a is None:
        if sft is None:
            raise TetherInputError(
                "the project has no SFT policy artifact; register it with `tether policy register PATH`, "
                "or pass the baseline eval run as A"
            )
        a_run = _run_of(project, sft, "sft")
    else:
        a_run = load_eval_run(project, a)
    pairs = [(a_run, b_run)]
    if sft is not None and a_run.checkpoint_artifact != sft and b_run.checkpoint_artifact != sft:
        baseline = latest_run_of(project, sft)
        if baseline is not None:
            pairs.append((baseline, b_run))
    return pairs
