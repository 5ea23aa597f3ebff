"""The reward steps of `tether loop`: (3) train the reward model, (4) evaluate and gate it.

A failed gate with retries left is not a stop: `remediation` plans a targeted batch from what
failed, and the gate answers `rewind_to="collect"` so that the batch is labeled, the reward model
retrained on everything and the gate rerun. Each attempt is kept in the gate's `attempts`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from tether.artifacts import POLICY_KIND, latest
from tether.errors import TetherInputError
from tether.feedback.loop.machine import IterationContext, StepOutcome
from tether.feedback.loop.results import (
    CollectResult,
    EditPreferenceFigures,
    Estimate,
    GateAttempt,
    GateResult,
    ProbeFigures,
    ReliabilityFigures,
    RemediationFigures,
    RewardResult,
    read_estimates,
)
from tether.store import get_artifact

if TYPE_CHECKING:
    from tether.feedback.loop.remediation import EditPreference, RemediationPlan, Target
    from tether.labeling.export import PreferenceRow
    from tether.project import Project
    from tether.reward.gate_run import RMEvalResult


def reward(ctx: IterationContext) -> StepOutcome:
    """(3) A reward model on everything labeled so far, from the SFT policy, as InstructGPT did."""
    from tether.reward.config import RewardTrainConfig
    from tether.reward.eval_inputs import trained_sources
    from tether.reward.train import train_reward_model

    project = ctx.project
    export_id = str(CollectResult.from_dict(ctx.result("collect")).export)
    with project.store.session() as session:
        export = get_artifact(session, artifact_id=export_id)
    sft = latest(project, POLICY_KIND)
    if export is None or sft is None:
        raise TetherInputError(
            f"export {export_id} or the SFT policy is no longer registered; rerun `tether loop`"
        )
    out = project.path("models", ctx.named("rm-loop"))
    cfg = RewardTrainConfig(epochs=ctx.cfg.rm_epochs, seed=ctx.cfg.seed)
    with ctx.hooks.rm_progress() as on_step:
        result = train_reward_model(
            project,
            cfg,
            data=project.resolve(export.path),
            base=project.resolve(sft.path),
            out=out,
            on_warning=lambda w: ctx.say(f"warning: {w}"),
            on_step=on_step,
            trackers=ctx.cfg.trackers,
        )
    if result.artifact is None:
        raise TetherInputError(f"the reward model in {out} was not registered; rerun `tether loop`")
    ctx.say(
        f"reward model {result.artifact.id}: {result.pairs} pairs, held-out accuracy "
        f"{result.metrics.get('test/accuracy', float('nan')):.3f}, {result.pairs_per_second:.0f} pairs/s"
    )
    sources = trained_sources(result.out)
    figures = RewardResult(result.artifact.id, result.pairs, result.seconds, tuple(result.warnings), sources)
    return StepOutcome(results=figures.to_dict(), artifacts={"reward_model": result.artifact.id})


def gate(ctx: IterationContext) -> StepOutcome:
    """(4) Held-out evaluation, bias probes and the spec's gate.

    A failure with retries left plans a targeted batch and reruns collect, reward and gate; once
    the retries are spent it stops before RL. Every attempt is kept in `attempts`."""
    from tether.reward.gate_run import evaluate_and_gate

    project = ctx.project
    rm_id = str(RewardResult.from_dict(ctx.result("reward")).artifact)
    attempts = GateResult.from_dict(ctx.result("gate")).attempts
    number = len(attempts) + 1
    out = project.path("rm_eval", f"loop-{ctx.number}", f"attempt-{number}", "rm_eval.json").parent
    result = evaluate_and_gate(project, rm_id, out=out, say=ctx.say, status=ctx.hooks.status)
    figures = gate_figures(project, result)
    for check in figures.checks:
        ctx.say(f"  {check.decided}{' (marginal)' if check.status == 'marginal' else ''}: {check.message}")
    attempt = GateAttempt(
        attempt=number,
        retry=retry_index(attempts),
        reward_model=rm_id,
        rm_eval=result.artifact_id,
        passed=result.passed,
        failures=figures.failures,
        warnings=figures.warnings,
        overall=figures.overall,
        by_dimension=figures.by_dimension,
        probes=figures.probes,
    )
    artifacts = {"rm_eval": result.artifact_id}
    if result.passed:
        ctx.say(f"gate attempt {number} passed")
        return _outcome(figures, attempts, replace(attempt, action="pass"), artifacts)
    retries = ctx.cfg.max_gate_retries
    allowed = project.spec.loop.max_gate_retries if retries is None else retries
    reason = f"the reward model failed its gate: {'; '.join(figures.failures)}"
    if attempt.retry >= allowed:
        after = f" (after {allowed} targeted relabeling round(s))" if allowed else ""
        return _stop(figures, attempts, attempt, artifacts, reason + after)
    targets = _targets(ctx, result)
    held = _rater_held(ctx, targets)
    if held:
        figures_held = tuple(EditPreferenceFigures.from_dict(p.to_dict()) for p in held)
        why = "".join(
            f"; {p.describe()}: the raters share the bias, so more of their labels would teach it again: "
            f"recalibrate them on {p.probe} edits (counterfactual anchors) or revisit the bar"
            for p in held
        )
        return _stop(
            figures, attempts, replace(attempt, edit_preferences=figures_held), artifacts, reason + why
        )
    plan = _plan(ctx, targets, number)
    if plan.batch_id is None:
        why = f"; no targeted batch could be planned ({'; '.join(plan.skipped) or 'no target'})"
        return _stop(figures, attempts, attempt, artifacts, reason + why)
    ctx.say(
        f"gate attempt {number} failed; targeted batch {plan.batch}: {plan.tasks} tasks "
        f"({', '.join(f'{k} {v}' for k, v in plan.by_target.items())}); relabel, retrain, re-gate"
    )
    done = replace(attempt, action="remediate", remediation=RemediationFigures.from_dict(plan.to_dict()))
    outcome = _outcome(figures, attempts, done, artifacts)
    return StepOutcome(outcome.results, outcome.artifacts, rewind_to="collect")


def _stop(
    figures: GateResult,
    attempts: Sequence[GateAttempt],
    attempt: GateAttempt,
    artifacts: dict[str, str],
    reason: str,
) -> StepOutcome:
    """The gate's last word in this round: stop before RL, go on to the diagnosis."""
    outcome = _outcome(figures, attempts, replace(attempt, action="stop", stop_reason=reason), artifacts)
    return StepOutcome(outcome.results, outcome.artifacts, stop=reason, skip_to="diagnose")


def retry_index(attempts: Sequence[GateAttempt]) -> int:
    """This attempt's place in its round: 0 first, +1 after each remediation (a stop starts a new round).

    >>> retry_index([GateAttempt(retry=0, action="remediate")])
    1
    >>> retry_index([GateAttempt(retry=2, action="stop")])
    0
    """
    if attempts and attempts[-1].action == "remediate":
        return attempts[-1].retry + 1
    return 0


def _outcome(
    figures: GateResult, attempts: Sequence[GateAttempt], attempt: GateAttempt, artifacts: dict[str, str]
) -> StepOutcome:
    results = replace(figures, attempts=(*attempts, attempt)).to_dict()
    return StepOutcome(results=results, artifacts=artifacts)


def _targets(ctx: IterationContext, result: RMEvalResult) -> list[Target]:
    """What the failed checks ask to be labeled (see `remediation.remediation_targets`)."""
    from tether.feedback.loop.remediation import remediation_targets
    from tether.reward.probes import make_probe, probe_names

    assert result.verdict is not None
    accuracy = {d: a.accuracy for d, a in result.report.by_dimension.items()}
    editable = [n for n in probe_names() if not make_probe(n).order_only]
    dims = ctx.project.spec.dimension_ids
    return remediation_targets(result.verdict.checks, dimensions=dims, probes=editable, accuracy=accuracy)


def _rater_held(ctx: IterationContext, targets: Sequence[Target]) -> list[EditPreference]:
    """Failing probes whose labeled counterfactual pairs show the raters preferring the edit.

    Relabeling by the same raters would teach such a bias again, so the gate stops instead of
    planning (the first round of a probe has no counterfactual labels yet and always plans)."""
    from tether.feedback.loop.remediation import edit_preference

    rows = _export_rows(ctx)
    preferences = [edit_preference(ctx.project, rows, probe=t.name) for t in targets if t.kind == "probe"]
    for p in preferences:
        if p.pairs:
            ctx.say(p.describe() + ("; the raters share this bias" if p.raters_prefer_edit else ""))
    return [p for p in preferences if p.raters_prefer_edit]


def _plan(ctx: IterationContext, targets: Sequence[Target], attempt: int) -> RemediationPlan:
    """The targeted batch: probe counterfactuals and weak dimensions' hard strata, on fresh prompts."""
    from tether.feedback.loop.label_steps import policy_sampler
    from tether.feedback.loop.remediation import plan_remediation
    from tether.reward.probes import make_probe, probe_context

    project = ctx.project
    probes = probe_context(project)
    sampler = policy_sampler(ctx, seed=ctx.seed + 100 * attempt)
    n = ctx.cfg.remediation_pairs or project.spec.loop.remediation_pairs
    with ctx.hooks.status(f"planning a targeted batch of {n} tasks per failed check"):
        return plan_remediation(
            project,
            targets,
            n=n,
            sample=sampler.sample_one,
            sample_two=sampler,
            labels=sampler.labels,
            name=f"loop-{ctx.number}-remediation-{attempt}",
            seed=ctx.seed + 100 * attempt,
            edits={t.name: make_probe(t.name, probes).edit for t in targets if t.kind == "probe"},
            guard=_sandbox_guard(project),
        )


def _export_rows(ctx: IterationContext) -> list[PreferenceRow]:
    """Every row (train and held-out) of the export this attempt's reward model was trained on."""
    from tether.labeling.export_files import load_rows

    export_id = CollectResult.from_dict(ctx.result("collect")).export
    with ctx.project.store.session() as session:
        record = get_artifact(session, artifact_id=str(export_id))
    if record is None:
        return []
    path = ctx.project.resolve(record.path)
    return [*load_rows(path, "train"), *load_rows(path, "test")]


def _sandbox_guard(project: Project) -> Callable[[str, str, str], bool] | None:
    """In the sandbox, gold's word on each edit (as the probes use it); elsewhere raters decide alone."""
    from tether.artifacts import is_sandbox

    if not is_sandbox(project):
        return None
    from tether.store import list_prompts
    from tether.world import world_for

    with project.store.session() as session:
        prompts = list_prompts(session, project_id=project.project_id, split="pool")
    return world_for(project).edit_guard((p.text, dict(p.meta)) for p in prompts)


def gate_figures(project: Project, result: RMEvalResult) -> GateResult:
    """The gate's figures from an evaluation (the stored shape: docs/loop.md)."""
    report = result.report.to_dict()
    verdict = result.verdict
    gold = report.get("gold") or {}
    calibration = report.get("calibration") or {}
    return GateResult(
        passed=result.passed,
        failures=tuple(verdict.failures) if verdict else (),
        warnings=tuple(verdict.warnings) if verdict else (),
        checks=tuple(verdict.checks) if verdict else (),
        overall=Estimate.read(report.get("overall"), "accuracy"),
        by_dimension=read_estimates(report.get("by_dimension"), "accuracy"),
        by_stratum=read_estimates(report.get("by_stratum"), "accuracy"),
        gold_by_dimension=read_estimates(gold["by_dimension"], "accuracy")
        if gold.get("by_dimension")
        else None,
        ece=calibration.get("ece"),
        brier=calibration.get("brier"),
        reliability=tuple(ReliabilityFigures.from_dict(b) for b in calibration.get("bins") or []),
        probes=tuple(ProbeFigures(p.name, p.mean_delta, p.low, p.high, p.n) for p in result.probes),
        report=project.relative(result.json_path),
        rm_eval=result.artifact_id,
    )
