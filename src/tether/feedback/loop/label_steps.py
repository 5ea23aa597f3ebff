"""The labeling steps of `tether loop`: (1) plan a batch, (2) collect its labels and export them.

Each step is a function `(IterationContext) -> StepOutcome` (see `machine`); it calls the stages'
own library functions, and the figures it returns are what the report and the next iteration's
diagnosis read (their shapes: docs/loop.md).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from tether.artifacts import MAKES, POLICY_KIND, is_sandbox, latest
from tether.errors import TetherInputError
from tether.feedback.diagnosis import Focus
from tether.feedback.loop.machine import IterationContext, StepOutcome
from tether.feedback.loop.results import CollectResult, PlanResult, RaterFigures

if TYPE_CHECKING:
    from tether.labeling.batches import PairSampler, PolicySource
    from tether.project import Project

HARD = ("hard", "adversarial", "edge")
MIN_BATCH = 50
"""The smallest batch the plan step shrinks to when the unused pool runs short (then it fails)."""


def policy_sampler(ctx: IterationContext, *, seed: int) -> PairSampler:
    """A sampler of this iteration's labeling policy (against SFT after the first iteration)."""
    from tether.labeling.batches import PairSampler

    policy, baseline = _policy_sources(ctx)
    return PairSampler(policy, baseline, seed=seed, generation=ctx.project.spec.generation)


def _policy_sources(ctx: IterationContext) -> tuple[PolicySource, PolicySource | None]:
    """The latest RL policy against SFT (on-policy pairs), or two SFT samples in the first iteration."""
    from tether.labeling.batches import PolicySource

    project = ctx.project
    sft = latest(project, POLICY_KIND)
    if sft is None:
        raise TetherInputError(f"the project has no SFT policy to label samples of; {MAKES[POLICY_KIND]}")
    sft_source = PolicySource(project.resolve(sft.path), sft.id)
    rl = (ctx.last.results.get("rl") or {}) if ctx.last else {}
    if rl.get("artifact") and rl.get("checkpoint"):
        return PolicySource(project.resolve(str(rl["checkpoint"])), str(rl["artifact"])), sft_source
    return sft_source, None


def plan(ctx: IterationContext) -> StepOutcome:
    """(1) A labeling batch with part of it steered to the last diagnosis's focus."""
    from tether.hf import quiet_transformers
    from tether.labeling.batches import plan_batch

    quiet_transformers()
    project, spec = ctx.project, ctx.project.spec
    focus = Focus.from_dict(ctx.last.focus) if ctx.last else Focus()
    sampler = policy_sampler(ctx, seed=ctx.seed)
    n = ctx.pairs
    name = f"loop-{ctx.number}"
    share = spec.loop.focus_share if focus.weights else 0.0
    planned = None
    while planned is None:
        try:
            with ctx.hooks.status(f"sampling two responses for {n} prompts"):
                planned = plan_batch(
                    project,
                    n=n,
                    sampler=sampler,
                    labels=sampler.labels,
                    seed=ctx.seed,
                    name=name,
                    focus=focus.weights,
                    focus_share=share,
                )
        except TetherInputError as exc:
            if "cannot meet the spec's quotas" not in str(exc):
                raise
            if share > 0:
                # A steered batch asks more of a few cells than an even one; the unused pool may not hold it.
                share = round(share / 2, 3) if share > 0.05 else 0.0
                ctx.say(
                    f"the prompt pool cannot hold the whole focus; steering {share:.0%} of the batch instead"
                )
                continue
            # Targeted batches and red-team routing draw on the same pool: plan what is left, and say so.
            if n <= MIN_BATCH:
                raise
            n = max(MIN_BATCH, int(n * 0.8))
            ctx.say(
                f"the unused prompt pool cannot hold the spec's mix for the whole batch; planning {n} tasks"
            )
    s = planned.summary
    ctx.say(
        f"batch {name}: {s.tasks} tasks, hard-case share {s.hard_share:.1%}, "
        f"focus {', '.join(focus.weights) or 'none (first iteration or nothing stood out)'}"
    )
    result = PlanResult(
        batch=name,
        batch_id=planned.batch_id,
        tasks=s.tasks,
        overlapped=s.overlapped,
        hard_share=s.hard_share,
        dimension_shares=dict(s.dimension_shares),
        strata=dict(s.strata),
        focus=focus.to_dict(),
        focus_share=share,
        policy=sampler.labels[0],
    )
    return StepOutcome(results=result.to_dict())


def _open_slots(project: Project) -> int:
    from tether.store.tasks import slot_counts

    with project.store.session() as session:
        return int(slot_counts(session, project_id=project.project_id)["open"])


def _simulate(ctx: IterationContext) -> tuple[int, list[str]]:
    """The sandbox's rater pool answers all open work, then an admin's review of the rater report."""
    from pathlib import Path

    from tether.world import world_for

    project = ctx.project
    pool = Path(ctx.cfg.pool) if ctx.cfg.pool else None
    # Each collect of the iteration (a remediation reruns it) draws afresh: same seed, other labels.
    seed = ctx.seed + 1000 * ctx.gate_attempts
    with ctx.hooks.status("simulated raters are labeling"):
        judgments, graded = world_for(project).simulate_labels(project, pool=pool, seed=seed)
    ctx.say(f"simulated raters gave {judgments} judgments and {graded} rubric grades")
    return graded, _exclude_peer_flagged(ctx)


def _exclude_peer_flagged(ctx: IterationContext) -> list[str]:
    """The sandbox loop plays the admin: raters the report flags on peer agreement, or for a style
    bias on the counterfactual pairs (`tether.labeling.edit_bias`), are excluded.

    In a project with people this stays an admin's decision (`tether raters exclude`), and the
    diagnosis lists the flagged raters instead.
    """
    from tether.labeling.raters import exclude
    from tether.labeling.report import raters_status

    out = []
    for rater in raters_status(ctx.project)["raters"]:
        if rater["status"] != "active":
            continue
        flags, biases = rater.get("peer_flags") or [], rater.get("edit_flags") or []
        reasons = [f"peer agreement far below the pool on {', '.join(flags)}"] if flags else []
        reasons += [b["detail"] for b in biases]
        if reasons:
            reason = f"loop {ctx.number}: {'; '.join(reasons)}"
            exclude(ctx.project, name=rater["name"], reason=reason)
            ctx.say(f"excluded {rater['name']}: {reason}")
            out.append(rater["name"])
    return out


def _label_figures(project: Project, plan: PlanResult) -> CollectResult:
    """Volume by dimension, stratum and origin of everything labeled so far, agreement and raters."""
    from tether.labeling.report import raters_status
    from tether.store.tasks import progress_by_cell

    with project.store.session() as session:
        cells = progress_by_cell(session, project_id=project.project_id)
    by_dimension: dict[str, int] = {}
    by_stratum: dict[str, int] = {}
    for dimension, stratum, done, _total in cells:
        by_dimension[dimension] = by_dimension.get(dimension, 0) + done
        by_stratum[stratum] = by_stratum.get(stratum, 0) + done
    total = sum(by_stratum.values())
    status = raters_status(project)
    pool = status.get("pool") or {}
    raters = tuple(
        RaterFigures(
            name=r["name"],
            status=r["status"],
            expert_agreement=r.get("anchor_agreement"),
            peer_agreement=r.get("majority_agreement"),
            judgments=r.get("judgments") or 0,
            excluded=r["status"] == "excluded",
            reason=r.get("reason") if r["status"] != "active" else None,
            peer_flags=tuple(r.get("peer_flags") or []),
        )
        for r in status["raters"]
    )
    return CollectResult(
        batch_id=plan.batch_id,
        batch=plan.batch,
        tasks=plan.tasks,
        by_dimension=by_dimension,
        by_stratum=by_stratum,
        hard_share=(sum(by_stratum.get(s, 0) for s in HARD) / total) if total else None,
        by_origin=_origins(project),
        agreement_pool=pool.get("pairwise_agreement"),
        agreement_alpha=pool.get("alpha"),
        raters=raters,
        judgments=int(status.get("judgments") or 0),
    )


def _origins(project: Project) -> dict[str, int]:
    from tether.store.tasks import tasks_by_origin

    with project.store.session() as session:
        return tasks_by_origin(session, project_id=project.project_id)


def _waiting_for_raters(project: Project) -> str | None:
    """What the collect step waits for in a project with people: raters, or their open labels."""
    from tether.store.raters import list_raters

    again = "run `tether loop` again once they have"
    with project.store.session() as session:
        raters = [r for r in list_raters(session, project_id=project.project_id) if not r.is_admin]
    if not raters:
        return (
            "the batch is planned, but the project has no raters yet: add them with "
            f"`tether raters add NAME` and start `tether label serve`; {again} labeled it"
        )
    open_slots = _open_slots(project)
    if open_slots:
        return f"{open_slots} labeling slots are still open; {again} finished them"
    if not any(r.status == "active" for r in raters):
        statuses = ", ".join(f"{r.name} {r.status}" for r in raters)
        return f"no rater is active yet ({statuses}; see `tether raters status`); {again} calibrated"
    return None


def collect(ctx: IterationContext) -> StepOutcome:
    """(2) Labels for the batch (simulated in the sandbox; people elsewhere), then the export."""
    from tether.labeling.dataset import export_preferences

    project = ctx.project
    sandbox = is_sandbox(project)
    grades, excluded = _simulate(ctx) if sandbox else (0, [])
    waiting = None if sandbox else _waiting_for_raters(project)
    if waiting is not None:
        # People label at their own pace: the loop says what it waits for and exits 0; running
        # `tether loop` again resumes here. Missing labels are never a failed gate (exit 3).
        return StepOutcome(wait=waiting)
    out = project.path("exports", ctx.named("loop"))
    result = export_preferences(project, out=out, heldout=0.1, seed=0)
    figures = replace(
        _label_figures(project, PlanResult.from_dict(ctx.result("plan"))),
        pairs=result.train + result.test,
        train_pairs=result.train,
        heldout_pairs=result.test,
        export=result.artifact.id,
        grades=grades,
        excluded_now=tuple(excluded),
    )
    ctx.say(f"export {result.artifact.id}: {result.train} train / {result.test} held-out pairs")
    return StepOutcome(results=figures.to_dict(), artifacts={"export": result.artifact.id})
