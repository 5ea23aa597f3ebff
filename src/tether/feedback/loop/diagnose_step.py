"""The last step of `tether loop`: (7) red-team search and routing, then the next labeling focus.

The focus is computed by the pure functions of `tether.feedback.diagnosis` from what the
iteration recorded; the next iteration's plan step steers part of its batch with it.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from tether.feedback.diagnosis import propose_focus, summarize_iteration
from tether.feedback.loop.machine import IterationContext, StepOutcome
from tether.feedback.loop.results import GateResult, RewardResult
from tether.feedback.loop.results_policy import DiagnoseResult, EvalsResult, RedteamFigures, RLResult

if TYPE_CHECKING:
    from tether.project import Project


def _redteam(ctx: IterationContext) -> RedteamFigures | None:
    """Search this iteration's policy against its reward model; route the top findings to labeling."""
    from tether.evals.redteam_route import route
    from tether.evals.redteam_search import search

    policy = RLResult.from_dict(ctx.result("rl")).artifact
    if ctx.cfg.redteam_prompts <= 0 or not policy:
        return None
    with ctx.hooks.status("red-team search: high reward, low independent grade"):
        found = search(
            ctx.project,
            policy=policy,
            reward_model=str(RewardResult.from_dict(ctx.result("reward")).artifact),
            prompts=ctx.cfg.redteam_prompts,
            seed=ctx.seed,
        )
    routed = route(ctx.project, top=ctx.cfg.redteam_top, seed=ctx.seed)
    by_dim: dict[str, int] = {}
    for finding in _findings(ctx.project, routed.finding_ids):
        if finding:
            by_dim[finding] = by_dim.get(finding, 0) + 1
    return RedteamFigures(
        artifact=found.artifact_id,
        findings=len(found.finding_ids),
        findings_mean_rm=found.findings_mean_rm,
        findings_mean_grade=found.findings_mean_grade,
        mean_grade=found.mean_grade,
        routed=len(routed.task_ids),
        routed_by_dimension=by_dim,
    )


def _findings(project: Project, ids: list[int]) -> list[str | None]:
    from tether.store.findings import list_findings

    wanted = set(ids)
    with project.store.session() as session:
        return [f.dimension for f in list_findings(session, project_id=project.project_id) if f.id in wanted]


def diagnose(ctx: IterationContext) -> StepOutcome:
    """(7) Red-team search and routing, then where the RM and policy are weak: the next focus."""
    spec = ctx.project.spec
    redteam = _redteam(ctx)
    gate = GateResult.from_dict(ctx.result("gate"))
    rl = RLResult.from_dict(ctx.result("rl"))
    evals = EvalsResult.from_dict(ctx.result("evals"))
    focus = propose_focus(
        bars={d.id: d.gate.min_accuracy for d in spec.dimensions},
        rm_by_dimension={d: e.write("accuracy") for d, e in gate.by_dimension.items()},
        rm_by_stratum={s: e.write("accuracy") for s, e in gate.by_stratum.items()},
        vs_sft={d: asdict(v) for d, v in evals.vs_sft.items()},
        alerts=[asdict(a) for a in rl.alerts],
        findings_by_dimension=redteam.routed_by_dimension if redteam else {},
    )
    stored = ctx.iteration.results
    text = summarize_iteration(
        ctx.number,
        focus,
        gate=gate if _ran(stored.get("gate")) else None,
        rl=rl if _ran(stored.get("rl")) else None,
        rl_skipped=bool(stored.get("rl")) and not _ran(stored.get("rl")),
        evals=evals if _ran(stored.get("evals")) else None,
    )
    ctx.say(text)
    figures = DiagnoseResult(summary=text, focus=focus.to_dict(), redteam=redteam)
    artifacts = {"redteam_search": redteam.artifact} if redteam and redteam.artifact else {}
    return StepOutcome(results=figures.to_dict(), artifacts=artifacts, focus=focus.to_dict(), diagnosis=text)


def _ran(stored: Any) -> bool:
    """A step that recorded figures (not one the loop skipped after a failed gate)."""
    return isinstance(stored, dict) and bool(stored) and not stored.get("skipped")
