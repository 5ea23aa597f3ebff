"""`tether eval run`: sample a policy on every suite case, grade the samples, save and register the run.

    tether eval run --checkpoint sft                 # the SFT baseline
    tether eval run                                  # the latest RL checkpoint (else SFT)
    tether eval run --quick --grader gold            # the first quick_cases_per_dimension cases

Steps: (1) resolve the policy and plan the suites, cases and graders (2) open the run directory
``.tether/evals/<run id>/`` and write run.json (3) sample ``samples`` responses per case, sample k
with seed k (4) grade case by case, appending each row to results.jsonl at once (5) summarize into
summary.json and register an ``eval_run`` artifact whose parent is the policy's artifact.

A grader that cannot go on at all (`GraderUnavailable`: an unreachable judge endpoint) ends the
run after its partial results and summary are written; the run is then not registered.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.artifacts import EVAL_RUN_KIND
from tether.errors import TetherError, TetherInputError
from tether.evals.checkpoints import EvaluatedPolicy, resolve_policy
from tether.evals.graders.base import GraderUnavailable, Sample
from tether.evals.plan import SuitePlan, plan_suites
from tether.evals.results import (
    RESULTS_FILE,
    RUN_FILE,
    SUMMARY_FILE,
    ResultRow,
    append_rows,
    dimension_scores,
    read_rows,
    summarize,
    write_json_atomic,
)
from tether.evals.sampling import PolicySampler, SamplingConfig
from tether.hashing import content_sha256
from tether.store import ArtifactRecord, find_artifact_by_path, get_artifact, register_artifact

if TYPE_CHECKING:
    from tether.project import Project

Progress = Callable[[str, int, int], None]
"""progress(phase, done, total) with phase "sample" or "grade"."""


@dataclass(frozen=True)
class EvalRun:
    """A finished (or collected) eval run."""

    artifact_id: str | None
    """The registered eval_run artifact; None for a run that ended early."""
    run_dir: Path
    checkpoint: str
    """The evaluated policy's artifact id, else its directory."""
    checkpoint_artifact: str | None
    checkpoint_kind: str
    """policy (SFT), rl_checkpoint or directory."""
    scores: dict[str, float | None]
    """Per dimension: mean over cases of the case score (mean over samples and graders)."""
    summary: dict[str, Any]
    meta: dict[str, Any]
    """run.json: suites and their hashes, graders, samples, seeds, sampling, spec hash."""

    @property
    def pending(self) -> int:
        return int(self.summary.get("pending", 0))

    def rows(self) -> list[ResultRow]:
        return read_rows(self.run_dir / RESULTS_FILE)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _run_meta(
    project: Project, run_id: str, policy: EvaluatedPolicy, plans: Sequence[SuitePlan], **extra: Any
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "status": "running",
        "started_at": _now(),
        "spec_hash": project.spec_hash,
        "checkpoint": {
            "label": policy.label,
            "name": policy.name,
            "path": project.relative(policy.path),
            "artifact_id": policy.artifact_id,
            "kind": policy.kind,
        },
        "suites": [
            {
                "name": p.name,
                "dimension": p.loaded.suite.dimension,
                "rubric": p.loaded.suite.rubric_dimension,
                "content_hash": p.loaded.content_hash,
                "cases": len(p.cases),
                "graders": [g.config for g in p.graders],
            }
            for p in plans
        ],
        **extra,
    }


def run_eval(
    project: Project,
    *,
    checkpoint: str = "latest",
    suites: Sequence[str] = (),
    graders: Sequence[str] = (),
    samples: int | None = None,
    quick: bool = False,
    progress: Progress | None = None,
    sampling: SamplingConfig | None = None,
) -> EvalRun:
    """Evaluate one policy on the project's suites; see the module docstring for the steps."""
    # (1) the policy, suites, cases and graders, all checked before any model loads
    n_samples = samples if samples is not None else project.spec.evals.samples_per_case
    if n_samples < 1:
        raise TetherInputError(f"--samples must be at least 1, got {n_samples}")
    plans = plan_suites(project, suites=suites, graders=graders, quick=quick)
    policy = resolve_policy(project, checkpoint)
    cfg = sampling or SamplingConfig()
    # (2) the run directory
    run_id = f"eval-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    run_dir = project.path("evals", run_id, RUN_FILE).parent
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = _run_meta(
        project, run_id, policy, plans, samples=n_samples, seeds=cfg.seeds(n_samples), quick=quick,
        sampling=asdict(cfg),
    )  # fmt: skip
    write_json_atomic(run_dir / RUN_FILE, meta)
    results = run_dir / RESULTS_FILE
    results.touch()
    # (3) sampling
    sampler = PolicySampler.load(policy.path, cfg)
    responses = sample_plans(sampler, plans, n_samples, progress)
    # (4) grading, row by row to disk
    try:
        grade_plans(
            plans, responses, cfg.seeds(n_samples), policy.name, partial(append_rows, results), progress
        )
    except GraderUnavailable as exc:
        _finish_files(run_dir, meta, status="failed", reason=str(exc))
        raise TetherError(f"{exc} The eval run stopped; the results graded so far are in {results}") from exc
    except BaseException as exc:
        _finish_files(run_dir, meta, status="failed", reason=f"{type(exc).__name__}: {exc}")
        raise
    # (5) summary and registration
    summary = _finish_files(run_dir, meta, status="completed", reason=None)
    artifact = register_eval_run(project, run_dir, meta, summary, parents=[policy.artifact_id])
    return _eval_run(artifact.id, run_dir, meta, summary)


def sample_plans(
    sampler: PolicySampler, plans: Sequence[SuitePlan], n_samples: int, progress: Progress | None
) -> dict[tuple[str, str], list[str]]:
    """(suite name, case id) -> its responses, sample k at index k."""
    keys = [(p.name, c.id) for p in plans for c in p.cases]
    prompts = [c.conversation for p in plans for c in p.cases]
    total, done = len(prompts) * n_samples, 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress("sample", done, total)

    outputs = sampler.sample(prompts, samples=n_samples, on_batch=tick)
    return dict(zip(keys, outputs, strict=True))


def grade_plans(
    plans: Sequence[SuitePlan],
    responses: dict[tuple[str, str], list[str]],
    seeds: Sequence[int],
    checkpoint: str,
    on_rows: Callable[[list[ResultRow]], None],
    progress: Progress | None = None,
) -> None:
    """Grade case by case (every grader on the case's samples), handing each case's rows to ``on_rows``."""
    total = sum(len(p.cases) for p in plans)
    done = 0
    for plan in plans:
        suite = plan.loaded.suite
        for case in plan.cases:
            samples = [
                Sample(suite, case, text, k, checkpoint)
                for k, text in enumerate(responses[(plan.name, case.id)])
            ]
            for grader in plan.graders:
                verdicts = grader.grade(samples)
                if len(verdicts) != len(samples):
                    raise TetherError(
                        f"grader {grader.name} returned {len(verdicts)} results for {len(samples)}"
                    )
                on_rows(
                    [
                        _row(plan, s, seeds[s.sample_index], grader.name, v)
                        for s, v in zip(samples, verdicts, strict=True)
                    ]
                )
            done += 1
            if progress is not None:
                progress("grade", done, total)


def _row(plan: SuitePlan, sample: Sample, seed: int, grader: str, verdict: Any) -> ResultRow:
    suite, case = plan.loaded.suite, sample.case
    return ResultRow(
        suite=plan.name,
        dimension=suite.dimension,
        rubric=suite.rubric_dimension,
        case_id=case.id,
        stratum=case.stratum,
        sample_index=sample.sample_index,
        seed=seed,
        prompt=case.prompt,
        response=sample.response,
        grader=grader,
        score=None if verdict.score is None else float(verdict.score),
        passed=verdict.passed,
        pending=verdict.pending,
        error=verdict.error,
        details=dict(verdict.details),
    )


def _finish_files(run_dir: Path, meta: dict[str, Any], *, status: str, reason: str | None) -> dict[str, Any]:
    summary = summarize(read_rows(run_dir / RESULTS_FILE))
    summary |= {"status": status, "reason": reason}
    write_json_atomic(run_dir / SUMMARY_FILE, summary)
    meta |= {"status": status, "reason": reason, "finished_at": _now()}
    write_json_atomic(run_dir / RUN_FILE, meta)
    return summary


def register_eval_run(
    project: Project,
    run_dir: Path,
    meta: dict[str, Any],
    summary: dict[str, Any],
    *,
    parents: Sequence[str | None],
) -> ArtifactRecord:
    """Register the run directory as an eval_run artifact (a collected run registers again)."""
    checkpoint = meta["checkpoint"]
    with project.store.session() as session:
        return register_artifact(
            session,
            project_id=project.project_id,
            kind=EVAL_RUN_KIND,
            path=project.relative(run_dir),
            content_hash=content_sha256(run_dir),
            spec_hash=project.spec_hash,
            parents=[p for p in parents if p],
            meta={
                "run_id": meta["run_id"],
                "checkpoint": checkpoint["name"],
                "checkpoint_label": checkpoint["label"],
                "checkpoint_artifact": checkpoint["artifact_id"],
                "checkpoint_kind": checkpoint["kind"],
                "suites": {s["name"]: s["content_hash"] for s in meta["suites"]},
                "graders": {s["name"]: s["graders"] for s in meta["suites"]},
                "samples": meta["samples"],
                "seeds": meta["seeds"],
                "quick": meta["quick"],
                "scores": dimension_scores(summary),
                "pending": summary.get("pending", 0),
            },
        )


def _eval_run(
    artifact_id: str | None, run_dir: Path, meta: dict[str, Any], summary: dict[str, Any]
) -> EvalRun:
    checkpoint = meta["checkpoint"]
    return EvalRun(
        artifact_id, run_dir, checkpoint["name"], checkpoint["artifact_id"], checkpoint["kind"],
        dimension_scores(summary), summary, meta,
    )  # fmt: skip


def load_eval_run(project: Project, ref: str) -> EvalRun:
    """An eval run by eval_run artifact id, run id or run directory."""
    import json

    with project.store.session() as session:
        record = get_artifact(session, artifact_id=ref)
        if record is not None and record.kind != EVAL_RUN_KIND:
            raise TetherInputError(f"artifact {ref} is a {record.kind}, not an {EVAL_RUN_KIND}")
        run_dir = project.resolve(record.path) if record else _run_dir(project, ref)
        if record is None:
            found = find_artifact_by_path(
                session, project_id=project.project_id, path=project.relative(run_dir)
            )
            record = found if found is not None and found.kind == EVAL_RUN_KIND else None
    meta = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    summary_path = run_dir / SUMMARY_FILE
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    else:
        summary = summarize(read_rows(run_dir / RESULTS_FILE))
    return _eval_run(record.id if record else None, run_dir, meta, summary)


def _run_dir(project: Project, ref: str) -> Path:
    for candidate in (Path(ref), project.state_dir / "evals" / ref):
        if (candidate / RUN_FILE).is_file():
            return candidate.resolve()
    raise TetherInputError(f"'{ref}' is neither an eval_run artifact id nor an eval run directory")
