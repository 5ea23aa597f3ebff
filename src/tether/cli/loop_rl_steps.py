"""The steps of `tether loop`, second half: a short RL run, the eval suites, and the diagnosis.

See `tether.cli.loop_steps` for the first half and `tether.feedback.loop` for the state machine.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from typing import TYPE_CHECKING, Any

from tether.cli.common import console
from tether.feedback.diagnosis import propose_focus, summarize_iteration
from tether.feedback.loop import LOOP_NOTE, IterationContext, StepOutcome
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


def _alerts(project: Project, run_id: str) -> list[dict[str, Any]]:
    with project.store.session() as session:
        records = list_alerts(session, project_id=project.project_id, run_id=run_id)
    return [
        {
            "monitor": a.monitor,
            "severity": a.severity,
            "step": a.step,
            "condition": a.condition,
            "message": a.message,
        }
        for a in records
    ]


def _rl_figures(ctx: IterationContext, result: RunResult) -> dict[str, Any]:
    project = ctx.project
    return {
        "run_id": result.run_id,
        "artifact": result.artifact.id if result.artifact else None,
        "checkpoint": project.relative(result.checkpoint),
        "metrics": project.relative(result.run_dir / "metrics.jsonl"),
        "status": result.status,
        "reason_stopped": result.reason,
        "kl_budget": project.spec.rl.kl_budget_nats,
        "steps": result.steps,
        "final": {k: result.metrics[k] for k in FINAL_KEYS if k in result.metrics},
        "max_kl": _max_metric(result.run_dir / "metrics.jsonl", "objective/kl"),
        "seconds": result.seconds,
        "alerts": _alerts(project, result.run_id),
    }


def warm_start(ctx: IterationContext) -> str | None:
    """The rl_checkpoint of the last iteration's RL run, if it completed with no critical alert."""
    rl = (ctx.last.results.get("rl") or {}) if ctx.last else {}
    if rl.get("status") != "completed" or not rl.get("artifact"):
        return None
    if any(a.get("severity") == "critical" for a in rl.get("alerts") or []):
        return None
    return str(rl["artifact"])


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

    from tether.cli.rl_cmd import rl_progress
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
    rm_id = str(ctx.result("reward")["artifact"])
    cfg = RLConfig(steps=ctx.cfg.rl_steps, seed=ctx.cfg.seed)
    if ctx.cfg.rl_save_every is not None:
        cfg = dataclasses.replace(cfg, save_every=ctx.cfg.rl_save_every)
    start = warm_start(ctx) if resume is None else None
    if start is not None:
        ctx.say(f"RL starts from iteration {ctx.last.number if ctx.last else '?'}'s policy ({start})")
    with rl_progress() as (on_step, on_message):
        result = run_rl(
            project,
            None if resume is not None else cfg,
            reward_model=None if resume is not None else rm_id,
            resume_from=str(resume) if resume is not None else None,
            init_from=start,
            on_step=on_step,
            on_message=on_message,
        )
    figures = _rl_figures(ctx, result)
    ctx.say(
        f"RL run {result.run_id}: {result.status} after {result.steps} steps; "
        f"final KL {figures['final'].get('objective/kl', float('nan')):.2f} of {figures['kl_budget']} nats"
    )
    artifacts = {"rl_checkpoint": figures["artifact"]} if figures["artifact"] else {}
    critical = [a for a in figures["alerts"] if a["severity"] == "critical"]
    if critical or result.status == "stopped":
        why = result.reason or "; ".join(f"{a['monitor']}: {a['message']}" for a in critical)
        return StepOutcome(results=figures, artifacts=artifacts, stop=f"the RL run stopped: {why}")
    return StepOutcome(results=figures, artifacts=artifacts)


def _gold_utility(run: EvalRun) -> float | None:
    values = [
        float(r.details["utility"]) for r in run.rows() if r.grader == "gold" and "utility" in r.details
    ]
    return statistics.fmean(values) if values else None


def _scores(run: EvalRun) -> dict[str, Any]:
    dims = run.summary.get("dimensions") or {}
    return {
        d: {"score": v.get("mean"), "low": v.get("low"), "high": v.get("high"), "n": v.get("n_cases")}
        for d, v in dims.items()
    }


def _deltas(a: EvalRun, b: EvalRun, ctx: IterationContext) -> dict[str, Any]:
    from tether.evals.compare import compare_runs

    comparison = compare_runs(a, b, ctx.project.spec, seed=ctx.cfg.seed)
    out = {}
    for d in comparison.dimensions:
        delta = d.delta.as_dict() if d.delta else {}
        out[d.dimension] = {
            "delta": delta.get("mean"),
            "low": delta.get("low"),
            "high": delta.get("high"),
            "regression": d.regressed,
            "critical": d.critical,
        }
    return out


def _sft_run(ctx: IterationContext) -> EvalRun:
    """The SFT baseline's eval run: the one an earlier iteration made, else a new one."""
    from tether.evals.run import load_eval_run, run_eval

    for earlier in reversed(ctx.previous):
        ref = (earlier.results.get("evals") or {}).get("sft_artifact")
        if ref:
            return load_eval_run(ctx.project, str(ref))
    with console.status("eval suites: the SFT baseline"):
        return run_eval(ctx.project, checkpoint="sft")


def evals(ctx: IterationContext) -> StepOutcome:
    """(6) The behavioral suites on the new checkpoint, against SFT and the previous iteration."""
    from tether.evals.run import load_eval_run, run_eval

    project = ctx.project
    checkpoint = str(ctx.result("rl")["artifact"])
    sft = _sft_run(ctx)
    with console.status("eval suites: this iteration's checkpoint"):
        run = run_eval(project, checkpoint=checkpoint)
    prev_ref = ((ctx.last.results.get("evals") or {}).get("artifact")) if ctx.last else None
    vs_sft = _deltas(sft, run, ctx)
    figures: dict[str, Any] = {
        "artifact": run.artifact_id,
        "sft_artifact": sft.artifact_id,
        "scores": _scores(run),
        "sft_scores": _scores(sft),
        "vs_sft": vs_sft,
        "vs_previous": _deltas(load_eval_run(project, str(prev_ref)), run, ctx) if prev_ref else None,
        "gold_utility": _gold_utility(run),
        "sft_gold_utility": _gold_utility(sft),
    }
    regressed = [d for d, v in vs_sft.items() if v["regression"]]
    ctx.say(f"eval suites vs SFT: regressions {', '.join(regressed) or 'none'}")
    return StepOutcome(results=figures, artifacts={"eval_run": run.artifact_id or ""})


def _redteam(ctx: IterationContext) -> dict[str, Any]:
    """Search this iteration's policy against its reward model; route the top findings to labeling."""
    from tether.evals.redteam_route import route
    from tether.evals.redteam_search import search

    rl_ = ctx.result("rl")
    if ctx.cfg.redteam_prompts <= 0 or not rl_.get("artifact"):
        return {}
    with console.status("red-team search: high reward, low independent grade"):
        found = search(
            ctx.project,
            policy=str(rl_["artifact"]),
            reward_model=str(ctx.result("reward")["artifact"]),
            prompts=ctx.cfg.redteam_prompts,
            seed=ctx.seed,
        )
    routed = route(ctx.project, top=ctx.cfg.redteam_top, seed=ctx.seed)
    by_dim: dict[str, int] = {}
    for finding in _findings(ctx.project, routed.finding_ids):
        if finding:
            by_dim[finding] = by_dim.get(finding, 0) + 1
    return {
        "artifact": found.artifact_id,
        "findings": len(found.finding_ids),
        "findings_mean_rm": found.findings_mean_rm,
        "findings_mean_grade": found.findings_mean_grade,
        "mean_grade": found.mean_grade,
        "routed": len(routed.task_ids),
        "routed_by_dimension": by_dim,
    }


def _findings(project: Project, ids: list[int]) -> list[str | None]:
    from tether.store.findings import list_findings

    wanted = set(ids)
    with project.store.session() as session:
        return [f.dimension for f in list_findings(session, project_id=project.project_id) if f.id in wanted]


def diagnose(ctx: IterationContext) -> StepOutcome:
    """(7) Red-team search and routing, then where the RM and policy are weak: the next focus."""
    spec = ctx.project.spec
    redteam = _redteam(ctx)
    gate_ = ctx.result("gate")
    focus = propose_focus(
        bars={d.id: d.gate.min_accuracy for d in spec.dimensions},
        rm_by_dimension=gate_.get("by_dimension") or {},
        rm_by_stratum=gate_.get("by_stratum") or {},
        vs_sft=(ctx.result("evals").get("vs_sft") or {}),
        alerts=ctx.result("rl").get("alerts") or [],
        findings_by_dimension=redteam.get("routed_by_dimension") or {},
    )
    results = {**ctx.iteration.results, "redteam": redteam}
    text = summarize_iteration(ctx.number, results, focus)
    ctx.say(text)
    figures = {"summary": text, "focus": focus.to_dict(), "redteam": redteam}
    artifacts = {"redteam_search": redteam["artifact"]} if redteam.get("artifact") else {}
    return StepOutcome(results=figures, artifacts=artifacts, focus=focus.to_dict(), diagnosis=text)
