"""The policy steps of `tether loop`: (5) a short RL run, (6) the eval suites against SFT.

See `label_steps` and `reward_steps` for the steps before, `diagnose_step` for the last one and
`machine` for the state machine.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from typing import TYPE_CHECKING

from tether.feedback.loop.machine import LOOP_NOTE, IterationContext, StepOutcome
from tether.feedback.loop.results import Estimate, RewardResult
from tether.feedback.loop.results_policy import AlertFigures, DeltaFigures, EvalsResult, RLResult
from tether.store import list_alerts, list_runs

if TYPE_CHECKING:
    from pathlib import Path

    from tether.evals.run import EvalRun
    from tether.project import Project
    from tether.rl.run import RunResult

FINAL_KEYS = (
    "objective/rm_score",
    "objective/kl",
    "objective/kl_coef",
    "gen/length_mean",
    "gen/hedge_rate",
    "gen/list_rate",
    "policy/entropy",
    "gold/utility",
)


def _interrupted_checkpoint(ctx: IterationContext) -> Path | None:
    """The last periodic checkpoint of this iteration's RL run, when a kill cut it short.

    The run is the newest `rl` run still marked running that started after the gate step was
    recorded; it is marked interrupted here, and the new run resumes from its checkpoint exactly.
    """
    from tether.store.runs import finish_run

    project = ctx.project
    with project.store.session() as session:
        runs = [
            r for r in list_runs(session, project_id=project.project_id, kind="rl") if r.status == "running"
        ]
        started = (ctx.iteration.results.get(LOOP_NOTE) or {}).get("rl_started_after")
        candidates = [r for r in runs if started is None or r.started_at.isoformat() >= str(started)]
        if not candidates:
            return None
        run = candidates[-1]
        finish_run(session, run_id=run.id, status="interrupted", reason=f"loop {ctx.number} was killed")
    steps = sorted(project.path("rl", run.id, "metrics.jsonl").parent.glob("step-*"))
    return steps[-1] if steps else None


def _alerts(project: Project, run_id: str) -> tuple[AlertFigures, ...]:
    with project.store.session() as session:
        records = list_alerts(session, project_id=project.project_id, run_id=run_id)
    return tuple(AlertFigures(a.monitor, a.severity, a.step, a.condition, a.message) for a in records)


def _rl_figures(ctx: IterationContext, result: RunResult) -> RLResult:
    project = ctx.project
    return RLResult(
        run_id=result.run_id,
        artifact=result.artifact.id if result.artifact else None,
        checkpoint=project.relative(result.checkpoint),
        metrics=project.relative(result.run_dir / "metrics.jsonl"),
        status=result.status,
        reason_stopped=result.reason,
        kl_budget=project.spec.rl.kl_budget_nats,
        steps=result.steps,
        final={k: float(result.metrics[k]) for k in FINAL_KEYS if k in result.metrics},
        max_kl=_max_metric(result.run_dir / "metrics.jsonl", "objective/kl"),
        seconds=result.seconds,
        alerts=_alerts(project, result.run_id),
    )


def warm_start(ctx: IterationContext) -> str | None:
    """The rl_checkpoint of the last iteration's RL run, if it completed with no critical alert."""
    rl = RLResult.from_dict(ctx.last.results.get("rl")) if ctx.last else RLResult()
    if rl.status != "completed" or not rl.artifact or rl.critical:
        return None
    return rl.artifact


def _max_metric(path: Path, key: str) -> float | None:
    values = [
        float(row[key])
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and key in (row := json.loads(line))
    ]
    return max(values) if values else None


def rl(ctx: IterationContext) -> StepOutcome:
    """(5) A short RL run against this iteration's gated reward model (resumed after a kill).

    It starts from the policy of the last iteration's RL run when that run completed with no
    critical alert (a warm start: KL, the budget and the monitors' baseline stay against SFT), else
    from SFT: each iteration builds on the last good policy instead of relearning it."""
    from datetime import UTC, datetime

    from tether.rl.config import RLConfig
    from tether.rl.run import run_rl
    from tether.store.iterations import record_loop_note

    project = ctx.project
    resume = _interrupted_checkpoint(ctx)
    if resume is None:
        # Noted before the run starts, so that a resumed loop can tell this iteration's run apart.
        with project.store.session() as session:
            note = {"rl_started_after": datetime.now(UTC).isoformat()}
            record_loop_note(session, iteration_id=ctx.iteration.id, note=note)
    rm_id = str(RewardResult.from_dict(ctx.result("reward")).artifact)
    cfg = RLConfig(steps=ctx.cfg.rl_steps, seed=ctx.cfg.seed)
    if ctx.cfg.rl_save_every is not None:
        cfg = dataclasses.replace(cfg, save_every=ctx.cfg.rl_save_every)
    start = warm_start(ctx) if resume is None else None
    if start is not None:
        ctx.say(f"RL starts from iteration {ctx.last.number if ctx.last else '?'}'s policy ({start})")
    with ctx.hooks.rl_progress() as (on_step, on_message):
        result = run_rl(
            project,
            None if resume is not None else cfg,
            reward_model=None if resume is not None else rm_id,
            resume_from=str(resume) if resume is not None else None,
            init_from=start,
            on_step=on_step,
            on_message=on_message,
            trackers=ctx.cfg.trackers,
        )
    figures = _rl_figures(ctx, result)
    ctx.say(
        f"RL run {result.run_id}: {result.status} after {result.steps} steps; "
        f"final KL {figures.final.get('objective/kl', float('nan')):.2f} of {figures.kl_budget} nats"
    )
    artifacts = {"rl_checkpoint": figures.artifact} if figures.artifact else {}
    if figures.critical or result.status == "stopped":
        why = result.reason or "; ".join(f"{a.monitor}: {a.message}" for a in figures.critical)
        return StepOutcome(results=figures.to_dict(), artifacts=artifacts, stop=f"the RL run stopped: {why}")
    return StepOutcome(results=figures.to_dict(), artifacts=artifacts)


def _gold_utility(run: EvalRun) -> float | None:
    values = [
        float(r.details["utility"]) for r in run.rows() if r.grader == "gold" and "utility" in r.details
    ]
    return statistics.fmean(values) if values else None


def _scores(run: EvalRun) -> dict[str, Estimate]:
    dims = run.summary.get("dimensions") or {}
    return {
        d: Estimate(v.get("mean"), v.get("low"), v.get("high"), int(v.get("n_cases") or 0))
        for d, v in dims.items()
    }


def _deltas(a: EvalRun, b: EvalRun, ctx: IterationContext) -> dict[str, DeltaFigures]:
    from tether.evals.compare import compare_runs

    comparison = compare_runs(a, b, ctx.project.spec, seed=ctx.cfg.seed)
    out = {}
    for d in comparison.dimensions:
        delta = d.delta.as_dict() if d.delta else {}
        out[d.dimension] = DeltaFigures(
            delta.get("mean"), delta.get("low"), delta.get("high"), bool(d.regressed), bool(d.critical)
        )
    return out


def _sft_run(ctx: IterationContext) -> EvalRun:
    """The SFT baseline's eval run: the one an earlier iteration made, else a new one."""
    from tether.evals.run import load_eval_run, run_eval

    for earlier in reversed(ctx.previous):
        ref = EvalsResult.from_dict(earlier.results.get("evals")).sft_artifact
        if ref:
            return load_eval_run(ctx.project, str(ref))
    with ctx.hooks.status("eval suites: the SFT baseline"):
        return run_eval(ctx.project, checkpoint="sft")


def evals(ctx: IterationContext) -> StepOutcome:
    """(6) The behavioral suites on the new checkpoint, against SFT and the previous iteration."""
    from tether.evals.run import load_eval_run, run_eval

    project = ctx.project
    checkpoint = str(RLResult.from_dict(ctx.result("rl")).artifact)
    sft = _sft_run(ctx)
    with ctx.hooks.status("eval suites: this iteration's checkpoint"):
        run = run_eval(project, checkpoint=checkpoint)
    prev_ref = EvalsResult.from_dict(ctx.last.results.get("evals")).artifact if ctx.last else None
    figures = EvalsResult(
        artifact=run.artifact_id,
        sft_artifact=sft.artifact_id,
        scores=_scores(run),
        sft_scores=_scores(sft),
        vs_sft=_deltas(sft, run, ctx),
        vs_previous=_deltas(load_eval_run(project, prev_ref), run, ctx) if prev_ref else None,
        gold_utility=_gold_utility(run),
        sft_gold_utility=_gold_utility(sft),
    )
    ctx.say(f"eval suites vs SFT: regressions {', '.join(figures.regressions) or 'none'}")
    return StepOutcome(results=figures.to_dict(), artifacts={"eval_run": run.artifact_id or ""})
