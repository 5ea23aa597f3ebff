"""The steps of `tether loop`, first half: plan and collect labels, train the reward model, gate it.

Each step is a function `(IterationContext) -> StepOutcome` (see `tether.feedback.loop`); it calls
the stages' own library functions, and the figures it returns are what the report and the next
iteration's diagnosis read (their shapes: docs/loop.md). The RL, eval and diagnosis steps are in
`tether.cli.loop_rl_steps`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.cli.common import console
from tether.errors import QualityGateFailed, TetherInputError
from tether.feedback.diagnosis import Focus
from tether.feedback.loop import IterationContext, StepOutcome
from tether.store import get_artifact, latest_artifact

if TYPE_CHECKING:
    from tether.labeling.batches import PolicySource
    from tether.project import Project

HARD = ("hard", "adversarial", "edge")
PROBE_KEYS = ("name", "mean_delta", "low", "high", "n")


def _sandbox(project: Project) -> bool:
    from tether.rl.inputs import is_sandbox

    return is_sandbox(project)


def _policy_sources(ctx: IterationContext) -> tuple[PolicySource, PolicySource | None]:
    """The latest RL policy against SFT (on-policy pairs), or two SFT samples in the first iteration."""
    from tether.labeling.batches import PolicySource

    project = ctx.project
    with project.store.session() as session:
        sft = latest_artifact(session, project_id=project.project_id, kind="policy")
    if sft is None:
        raise QualityGateFailed("the project has no SFT policy artifact; build or register one first")
    sft_source = PolicySource(project.resolve(sft.path), sft.id)
    rl = (ctx.last.results.get("rl") or {}) if ctx.last else {}
    if rl.get("artifact") and rl.get("checkpoint"):
        return PolicySource(project.resolve(str(rl["checkpoint"])), str(rl["artifact"])), sft_source
    return sft_source, None


def plan(ctx: IterationContext) -> StepOutcome:
    """(1) A labeling batch with part of it steered to the last diagnosis's focus."""
    from tether.hf import quiet_transformers
    from tether.labeling.batches import PairSampler, plan_batch

    quiet_transformers()
    project, spec = ctx.project, ctx.project.spec
    focus = Focus.from_dict(ctx.last.focus) if ctx.last else Focus()
    policy, baseline = _policy_sources(ctx)
    sampler = PairSampler(policy, baseline, seed=ctx.seed)
    n = ctx.pairs
    name = f"loop-{ctx.number}"
    share = spec.loop.focus_share if focus.weights else 0.0
    planned = None
    while planned is None:
        try:
            with console.status(f"sampling two responses for {n} prompts"):
                planned = plan_batch(
                    project, n=n, sampler=sampler, labels=sampler.labels, seed=ctx.seed, name=name,
                    focus=focus.weights, focus_share=share,
                )  # fmt: skip
        except TetherInputError as exc:
            # A steered batch asks more of a few cells than an even one; the unused pool may not hold it.
            if share <= 0 or "cannot meet the spec's quotas" not in str(exc):
                raise
            share = round(share / 2, 3) if share > 0.05 else 0.0
            ctx.say(f"the prompt pool cannot hold the whole focus; steering {share:.0%} of the batch instead")
    s = planned.summary
    ctx.say(
        f"batch {name}: {s.tasks} tasks, hard-case share {s.hard_share:.1%}, "
        f"focus {', '.join(focus.weights) or 'none (first iteration or nothing stood out)'}"
    )
    results = {
        "batch": name,
        "batch_id": planned.batch_id,
        "tasks": s.tasks,
        "overlapped": s.overlapped,
        "hard_share": s.hard_share,
        "dimension_shares": s.dimension_shares,
        "strata": s.strata,
        "focus": focus.to_dict(),
        "focus_share": share,
        "policy": sampler.labels[0],
    }
    return StepOutcome(results=results)


def _open_slots(project: Project) -> int:
    from tether.store.tasks import slot_counts

    with project.store.session() as session:
        return int(slot_counts(session, project_id=project.project_id)["open"])


def _simulate(ctx: IterationContext) -> dict[str, Any]:
    """The sandbox's rater pool answers all open work, then an admin's review of the rater report."""
    from tether.labeling.context import project_labeling_context
    from tether.labeling.simulate import simulate
    from tether.labeling.simulate_grading import simulate_grading
    from tether.sandbox.raters import default_pool

    project = ctx.project
    with console.status("simulated raters are labeling"):
        summary = simulate(project, project_labeling_context(project), default_pool(), seed=ctx.seed)
    graded = simulate_grading(project, seed=ctx.seed)
    excluded = _exclude_peer_flagged(ctx)
    return {"judgments": summary.judgments, "grades": graded, "excluded_now": excluded}


def _exclude_peer_flagged(ctx: IterationContext) -> list[str]:
    """The sandbox loop plays the admin: raters the report flags on peer agreement are excluded.

    In a project with people this stays an admin's decision (`tether raters exclude`), and the
    diagnosis lists the flagged raters instead.
    """
    from tether.labeling.raters import exclude
    from tether.labeling.report import raters_status

    out = []
    for rater in raters_status(ctx.project)["raters"]:
        flags = rater.get("peer_flags") or []
        if flags and rater["status"] == "active":
            reason = f"loop {ctx.number}: peer agreement far below the pool on {', '.join(flags)}"
            exclude(ctx.project, name=rater["name"], reason=reason)
            ctx.say(f"excluded {rater['name']}: {reason}")
            out.append(rater["name"])
    return out


def _label_figures(project: Project, batch_id: int) -> dict[str, Any]:
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
    raters = [
        {
            "name": r["name"],
            "status": r["status"],
            "expert_agreement": r.get("anchor_agreement"),
            "peer_agreement": r.get("majority_agreement"),
            "judgments": r.get("judgments") or 0,
            "excluded": r["status"] == "excluded",
            "reason": r.get("reason") if r["status"] != "active" else None,
            "peer_flags": r.get("peer_flags") or [],
        }
        for r in status["raters"]
    ]
    return {
        "batch_id": batch_id,
        "by_dimension": by_dimension,
        "by_stratum": by_stratum,
        "hard_share": (sum(by_stratum.get(s, 0) for s in HARD) / total) if total else None,
        "by_origin": _origins(project),
        "agreement": {"pool": pool.get("pairwise_agreement"), "alpha": pool.get("alpha")},
        "raters": raters,
        "judgments": status.get("judgments"),
    }


def _origins(project: Project) -> dict[str, int]:
    from tether.store.tasks import tasks_by_origin

    with project.store.session() as session:
        return tasks_by_origin(session, project_id=project.project_id)


def collect(ctx: IterationContext) -> StepOutcome:
    """(2) Labels for the batch (simulated in the sandbox; people elsewhere), then the export."""
    from tether.labeling.dataset import export_preferences

    project = ctx.project
    sandbox = _sandbox(project)
    sim = _simulate(ctx) if sandbox else {}
    open_slots = _open_slots(project)
    if open_slots and not sandbox:
        return StepOutcome(
            wait=f"{open_slots} labeling slots are still open; run `tether loop` again once raters finish"
        )
    out = project.path("exports", f"loop-{ctx.number}")
    result = export_preferences(project, out=out, heldout=0.1, seed=0)
    figures = _label_figures(project, int(ctx.result("plan").get("batch_id") or 0))
    figures |= {
        "batch": ctx.result("plan").get("batch"),
        "tasks": ctx.result("plan").get("tasks"),
        "pairs": result.train + result.test,
        "train_pairs": result.train,
        "heldout_pairs": result.test,
        "export": result.artifact.id,
        **sim,
    }
    ctx.say(f"export {result.artifact.id}: {result.train} train / {result.test} held-out pairs")
    return StepOutcome(results=figures, artifacts={"export": result.artifact.id})


def reward(ctx: IterationContext) -> StepOutcome:
    """(3) A reward model on everything labeled so far, from the SFT policy, as InstructGPT did."""
    from tether.cli.rm_train_cmd import train_progress
    from tether.reward.config import RewardTrainConfig
    from tether.reward.train import train_reward_model

    project = ctx.project
    export_id = str(ctx.result("collect")["export"])
    with project.store.session() as session:
        export = get_artifact(session, artifact_id=export_id)
        sft = latest_artifact(session, project_id=project.project_id, kind="policy")
    if export is None or sft is None:
        raise TetherInputError(
            f"export {export_id} or the SFT policy is no longer registered; rerun `tether loop`"
        )
    out = project.path("models", f"rm-loop-{ctx.number}")
    cfg = RewardTrainConfig(epochs=ctx.cfg.rm_epochs, seed=ctx.cfg.seed)
    with train_progress() as on_step:
        result = train_reward_model(
            project,
            cfg,
            data=project.resolve(export.path),
            base=project.resolve(sft.path),
            out=out,
            on_warning=lambda w: ctx.say(f"warning: {w}"),
            on_step=on_step,
        )
    assert result.artifact is not None
    ctx.say(
        f"reward model {result.artifact.id}: {result.pairs} pairs, held-out accuracy "
        f"{result.metrics.get('test/accuracy', float('nan')):.3f}, {result.pairs_per_second:.0f} pairs/s"
    )
    figures = {
        "artifact": result.artifact.id,
        "pairs": result.pairs,
        "seconds": result.seconds,
        "warnings": result.warnings,
    }
    return StepOutcome(results=figures, artifacts={"reward_model": result.artifact.id})


def gate(ctx: IterationContext) -> StepOutcome:
    """(4) Held-out evaluation, bias probes and the spec's gate; a failure stops before RL."""
    from tether.cli.rm_eval_cmd import evaluate

    project = ctx.project
    rm_id = str(ctx.result("reward")["artifact"])
    out = project.path("rm_eval", f"loop-{ctx.number}", "rm_eval.json").parent
    failure: str | None = None
    try:
        evaluate(checkpoint=rm_id, data=None, gate=True, out=out, project=project.root)
    except QualityGateFailed as exc:
        failure = str(exc)
    figures = gate_figures(project, out / "rm_eval.json")
    with project.store.session() as session:
        record = latest_artifact(session, project_id=project.project_id, kind="rm_eval")
    artifacts = {"rm_eval": record.id} if record else {}
    if failure is None:
        return StepOutcome(results=figures, artifacts=artifacts)
    reason = f"the reward model failed its gate: {'; '.join(figures.get('failures') or [failure])}"
    return StepOutcome(results=figures, artifacts=artifacts, stop=reason, skip_to="diagnose")


def gate_figures(project: Project, path: Path) -> dict[str, Any]:
    """The report's gate section from rm_eval.json (see docs/loop.md for the shape)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    report, gate_ = data["report"], data.get("gate") or {}
    gold = report.get("gold") or {}
    calibration = report.get("calibration") or {}
    return {
        "report": project.relative(path),
        "passed": bool(gate_.get("passed")),
        "failures": list(gate_.get("failures") or []),
        "warnings": list(gate_.get("warnings") or []),
        "overall": report.get("overall"),
        "by_dimension": report.get("by_dimension") or {},
        "by_stratum": report.get("by_stratum") or {},
        "gold_by_dimension": gold.get("by_dimension"),
        "ece": calibration.get("ece"),
        "brier": calibration.get("brier"),
        "reliability": calibration.get("bins") or calibration.get("reliability") or [],
        "probes": [{k: p.get(k) for k in PROBE_KEYS} for p in data.get("probes") or []],
    }
