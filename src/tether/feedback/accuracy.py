"""The reward model's accuracy on production-derived labels, against its gate.

Production comparison tasks (origin "production": a flagged response against a fresh policy sample,
see `tether.feedback.review`) are labelled like any other. Their majority labels, from active raters,
are preference pairs the reward model has not trained on (pairs from its own training export are left
out); the reward model should rank them as well as its gate demands (`reward_model.min_accuracy`).
Below MIN_LABELS pairs the figure is too noisy to act on, and no verdict is given.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from tether.labeling.dataset import task_votes
from tether.labeling.export import PreferenceRow, aggregate
from tether.project import Project
from tether.reward.metrics import bootstrap_interval, correct_pairs
from tether.reward.scoring import Scorer
from tether.store.exports import live_votes

MIN_LABELS = 30
"""Fewest production pairs for a verdict: at 30 pairs the 95% interval is still about ±0.17 wide."""
ORIGIN = "production"

Verdict = Literal["below_gate", "ok", "unmeasured"]


@dataclass(frozen=True)
class ProductionAccuracy:
    verdict: Verdict
    labels: int
    """Production pairs scored (ties and pairs without a majority are left out)."""
    accuracy: float | None
    """Share of pairs where the chosen response scored strictly higher; None when unmeasured."""
    low: float | None
    """95% bootstrap interval of the accuracy."""
    high: float | None
    gate: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def accuracy_verdict(correct: np.ndarray, *, gate: float, min_labels: int = MIN_LABELS) -> ProductionAccuracy:
    """The verdict on per-pair correctness: below the gate, ok, or too few labels to say."""
    n = int(np.asarray(correct).size)
    if n < min_labels:
        reason = f"not enough production labels yet ({n} of the {min_labels} needed)"
        return ProductionAccuracy("unmeasured", n, None, None, None, gate, reason)
    acc = float(np.mean(correct))
    low, high = bootstrap_interval(np.asarray(correct, dtype=np.float64))
    figure = f"{acc:.3f} on {n} production pairs (95% CI {low:.3f}-{high:.3f})"
    if acc < gate:
        return ProductionAccuracy(
            "below_gate", n, acc, low, high, gate, f"accuracy {figure} is below the gate {gate}"
        )
    return ProductionAccuracy("ok", n, acc, low, high, gate, f"accuracy {figure} meets the gate {gate}")


def production_labels(
    project: Project, *, exclude_task_ids: Collection[int], limit: int
) -> list[PreferenceRow]:
    """Majority labels of the newest `limit` production tasks, from active raters, minus excluded tasks."""
    with project.store.session() as session:
        facts = live_votes(session, project_id=project.project_id, statuses={"active"})
    tasks = [t for t in task_votes(facts) if t.origin == ORIGIN and t.task_id not in exclude_task_ids]
    rows, _ = aggregate(tasks[-limit:])
    return rows


def production_accuracy(
    project: Project,
    *,
    load_scorer: Callable[[], Scorer] | None,
    exclude_task_ids: Collection[int] = (),
    limit: int = 500,
) -> ProductionAccuracy:
    """Score the production labels with the reward model (loaded only when there are enough labels)."""
    gate = project.spec.reward_model.min_accuracy
    rows = production_labels(project, exclude_task_ids=exclude_task_ids, limit=limit)
    if len(rows) < MIN_LABELS:
        return accuracy_verdict(np.zeros(len(rows), dtype=bool), gate=gate)
    if load_scorer is None:
        return ProductionAccuracy("unmeasured", len(rows), None, None, None, gate, "no reward model yet")
    scorer = load_scorer()
    prompts = [r.prompt for r in rows]
    chosen = scorer.score(prompts, [r.chosen for r in rows])
    rejected = scorer.score(prompts, [r.rejected for r in rows])
    return accuracy_verdict(correct_pairs(chosen, rejected), gate=gate)
