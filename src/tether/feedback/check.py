"""The production health check behind `tether feedback drift` and `tether loop`.

    tether feedback drift          # exit 3 when the prompt mix drifted or the RM fell below its gate

(1) Drift: the newest `feedback.drift_window` production prompts against the reward model's training
prompts (the train split of the export in its lineage; without a reward model, the prompts labelled
so far), by the classifier two-sample test of `tether.feedback.drift`; drifted when the p-value is
below `feedback.drift_alpha`. (2) The reward model's accuracy on production labels it did not train
on (`tether.feedback.accuracy`), against `reward_model.min_accuracy`. (3) Raters due for scheduled
recalibration, and the feedback counts. Each check is stored as a run of kind "drift" with its figures;
what fails is also stored as alerts of that run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from tether.artifacts import EXPORT_KIND, REWARD_MODEL_KIND
from tether.conversation import last_user_turn
from tether.errors import TetherInputError
from tether.feedback.accuracy import ProductionAccuracy, production_accuracy
from tether.feedback.drift import MIN_SAMPLE, TwoSampleResult, classifier_two_sample_test, subsample
from tether.feedback.schedule import DueRater, raters_due
from tether.project import Project
from tether.reward.scoring import Scorer
from tether.store import ArtifactRecord, add_alerts, create_run, finish_run, get_artifact, latest_artifact
from tether.store.feedback import feedback_counts, labeled_prompts, recent_prompts

REFERENCE_PER_WINDOW = 4
"""Reference prompts drawn per production prompt in the window (at most): 2,000 for a window of 500."""
RUN_KIND = "drift"


@dataclass(frozen=True)
class Reference:
    """The prompts production is compared with, and where they came from."""

    texts: list[str]
    source: str
    task_ids: frozenset[int] = frozenset()
    """Tasks the reward model trained on: their labels do not count as fresh production labels."""


@dataclass(frozen=True)
class DriftReport:
    verdict: Literal["drifted", "stable", "unmeasured"]
    reason: str
    alpha: float
    reference: str
    test: TwoSampleResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "test": self.test.to_dict() if self.test else None}


@dataclass(frozen=True)
class FeedbackCheck:
    drift: DriftReport
    accuracy: ProductionAccuracy
    raters_due: list[DueRater]
    counts: dict[str, int]
    reward_model: str | None
    run_id: str | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Drifted, or the reward model is below its gate on production labels."""
        return self.drift.verdict == "drifted" or self.accuracy.verdict == "below_gate"

    def to_dict(self) -> dict[str, Any]:
        return {
            "failed": self.failed,
            "drift": self.drift.to_dict(),
            "accuracy": self.accuracy.to_dict(),
            "raters_due": [asdict(d) for d in self.raters_due],
            "counts": self.counts,
            "reward_model": self.reward_model,
            "run_id": self.run_id,
            "alerts": self.alerts,
        }


def _reward_model(project: Project, explicit: str | None) -> ArtifactRecord | None:
    """The named reward model artifact, else the latest (None when the project has none yet)."""
    project_id = project.project_id
    with project.store.session() as session:
        if explicit is None:
            return latest_artifact(session, project_id=project_id, kind=REWARD_MODEL_KIND)
        record = get_artifact(session, artifact_id=explicit)
    if record is None or record.kind != REWARD_MODEL_KIND:
        found = "is not in the registry" if record is None else f"is a {record.kind}"
        raise TetherInputError(f"--reward-model {explicit} {found}; pass a reward_model artifact id")
    return record


def reference_prompts(project: Project, reward_model: ArtifactRecord | None) -> Reference:
    """The reward model's training prompts (from its export), else every prompt labelled so far."""
    from tether.labeling.export_files import load_rows

    if reward_model is not None:
        with project.store.session() as session:
            parents = [get_artifact(session, artifact_id=p) for p in reward_model.parents]
        export = next((p for p in parents if p is not None and p.kind == EXPORT_KIND), None)
        if export is not None and project.resolve(export.path).is_dir():
            rows = load_rows(project.resolve(export.path), "train")
            texts = sorted({last_user_turn(r.prompt) for r in rows})
            source = f"training prompts of {reward_model.id} (export {export.id})"
            return Reference(texts, source, frozenset(r.task_id for r in rows))
    with project.store.session() as session:
        texts = labeled_prompts(session, project_id=project.project_id)
    return Reference(texts, "prompts labelled so far (no reward model with a readable export)")


def drift_report(project: Project, reference: Reference, *, seed: int = 0) -> DriftReport:
    """Recent production prompts vs the reference, judged at the spec's drift_alpha."""
    policy = project.spec.feedback
    with project.store.session() as session:
        recent = recent_prompts(session, project_id=project.project_id, limit=policy.drift_window)
    alpha, where = policy.drift_alpha, reference.source
    if len(recent) < MIN_SAMPLE or len(reference.texts) < MIN_SAMPLE:
        reason = (
            f"not enough prompts to compare yet ({len(recent)} production, {len(reference.texts)} reference; "
            f"{MIN_SAMPLE} each needed)"
        )
        return DriftReport("unmeasured", reason, alpha, where)
    texts = subsample(reference.texts, REFERENCE_PER_WINDOW * policy.drift_window, seed=seed)
    test = classifier_two_sample_test(recent, texts, seed=seed)
    figures = (
        f"AUC {test.auc:.3f}, p = {test.p_value:.4f} ({test.n_recent} production vs "
        f"{test.n_reference} reference prompts)"
    )
    if test.p_value < alpha:
        return DriftReport(
            "drifted", f"production prompts drifted: {figures} < alpha {alpha}", alpha, where, test
        )
    return DriftReport("stable", f"no drift detected: {figures}, alpha {alpha}", alpha, where, test)


def _scorer_loader(project: Project, reward_model: ArtifactRecord | None) -> Callable[[], Scorer] | None:
    """Loads the reward model only when called: only when there are enough labels to score."""
    if reward_model is None:
        return None
    path = project.resolve(reward_model.path)

    def load() -> Scorer:
        from tether.reward.scoring import load_reward_model

        return load_reward_model(path)

    return load


def check(
    project: Project,
    *,
    seed: int = 0,
    reward_model: str | None = None,
    scorer: Scorer | None = None,
    record: bool = True,
) -> FeedbackCheck:
    """Drift, the reward model's production accuracy, raters due and counts; stored as a "drift" run.

    `reward_model`: an artifact id (default: the latest); `scorer`: score with this instead of
    loading the reward model's checkpoint (its training prompts still come from its lineage)."""
    rm = _reward_model(project, reward_model)
    reference = reference_prompts(project, rm)
    drift = drift_report(project, reference, seed=seed)
    accuracy = production_accuracy(
        project,
        load_scorer=(lambda: scorer) if scorer is not None else _scorer_loader(project, rm),
        exclude_task_ids=reference.task_ids,
        limit=project.spec.feedback.drift_window,
    )
    with project.store.session() as session:
        counts = feedback_counts(session, project_id=project.project_id)
    result = FeedbackCheck(drift, accuracy, raters_due(project), counts, rm.id if rm else None)
    return record_check(project, result) if record else result


def check_alerts(result: FeedbackCheck) -> list[dict[str, Any]]:
    """The alerts a check raises, in the store's alert shape."""
    alerts = []
    if result.drift.verdict == "drifted" and result.drift.test is not None:
        alerts.append(
            {
                "step": 0,
                "monitor": "prompt_drift",
                "severity": "warning",
                "condition": f"p < {result.drift.alpha}",
                "message": result.drift.reason,
                "evidence": {**result.drift.test.to_dict(), "reference": result.drift.reference},
            }
        )
    if result.accuracy.verdict == "below_gate":
        alerts.append(
            {
                "step": 0,
                "monitor": "rm_production_accuracy",
                "severity": "critical",
                "condition": f"accuracy < {result.accuracy.gate}",
                "message": result.accuracy.reason,
                "evidence": result.accuracy.to_dict(),
            }
        )
    return alerts


def record_check(project: Project, result: FeedbackCheck) -> FeedbackCheck:
    """Store the check as a finished "drift" run with its figures, and its alerts."""
    alerts = check_alerts(result)
    project_id = project.project_id
    with project.store.session() as session:
        run = create_run(
            session,
            project_id=project_id,
            kind=RUN_KIND,
            config={"drift_window": project.spec.feedback.drift_window, "alpha": result.drift.alpha},
            spec_hash=project.spec_hash,
            meta={"reward_model": result.reward_model},
        )
        add_alerts(session, run_id=run.id, alerts=alerts)
        reason = "; ".join(a["message"] for a in alerts) or None
        figures = {
            "drift": result.drift.to_dict(),
            "accuracy": result.accuracy.to_dict(),
            "counts": result.counts,
        }
        finish_run(session, run_id=run.id, status="completed", reason=reason, meta=figures)
    return FeedbackCheck(
        result.drift, result.accuracy, result.raters_due, result.counts, result.reward_model, run.id, alerts
    )
