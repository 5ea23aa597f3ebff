"""The reward model's accuracy on production labels: a verdict only with enough labels, an alert below
the gate. Scored here by the sandbox's gold grader (a real scorer: it reads the prompt's ground truth)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tether.feedback.accuracy import MIN_LABELS, accuracy_verdict, production_accuracy, production_labels
from tether.feedback.check import check
from tether.project import Project
from tether.sandbox.gold import grade
from tether.sandbox.world import SandboxPrompt
from tether.store import list_alerts

from .conftest import stream, with_policy
from .flow import active_rater, judge_open_slots, routed


def test_too_few_labels_give_no_verdict() -> None:
    verdict = accuracy_verdict(np.ones(MIN_LABELS - 1, dtype=bool), gate=0.65)
    assert verdict.verdict == "unmeasured" and verdict.accuracy is None
    assert verdict.reason == f"not enough production labels yet ({MIN_LABELS - 1} of the {MIN_LABELS} needed)"


def test_below_the_gate_is_flagged_and_at_the_gate_is_not() -> None:
    low = accuracy_verdict(np.array([True] * 18 + [False] * 12), gate=0.65)  # 0.60
    at = accuracy_verdict(np.array([True] * 26 + [False] * 14), gate=0.65)  # 0.65
    assert (low.verdict, low.accuracy, low.labels) == ("below_gate", 0.6, 30)
    assert low.low is not None and low.high is not None and low.low < 0.6 < low.high
    assert (at.verdict, at.accuracy) == ("ok", 0.65)


class GoldScorer:
    """Rewards from the gold grader on the prompt's dimension; `sign=-1` ranks everything backwards."""

    def __init__(self, prompts: dict[str, SandboxPrompt], sign: float = 1.0) -> None:
        self.prompts, self.sign = prompts, sign

    def score(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return np.array(
            [
                self.sign * grade(self.prompts[p], r).dimension(self.prompts[p].dimension)
                for p, r in zip(prompts, responses, strict=True)
            ]
        )


def test_production_labels_measure_the_reward_model_and_alert_below_the_gate(
    sqlite_project: Project, tmp_path: Path
) -> None:
    project = with_policy(sqlite_project, "feedback", review_share=1.0)
    project = with_policy(project, "labeling", hidden_anchor_rate=0.0)
    items = stream(150)
    made = routed(project, tmp_path, items)
    active_rater(project, "ana")
    assert judge_open_slots(project, "ana") == made
    rows = production_labels(project, exclude_task_ids=(), limit=500)
    assert len(rows) >= MIN_LABELS and {r.origin for r in rows} == {"production"}
    prompts = {i["prompt"]: SandboxPrompt.from_meta(i["meta"]) for i in items}

    good = production_accuracy(project, load_scorer=lambda: GoldScorer(prompts))
    assert (good.verdict, good.accuracy, good.labels) == ("ok", 1.0, len(rows))
    trained_on = production_accuracy(
        project, load_scorer=lambda: GoldScorer(prompts), exclude_task_ids={r.task_id for r in rows}
    )
    assert trained_on.verdict == "unmeasured" and trained_on.labels == 0  # labels it trained on do not count

    backwards = check(project, scorer=GoldScorer(prompts, sign=-1.0))
    assert backwards.accuracy.verdict == "below_gate" and backwards.accuracy.accuracy == 0.0
    assert backwards.failed
    with project.store.session() as session:
        alerts = list_alerts(session, run_id=backwards.run_id or "")
    assert [(a.monitor, a.severity) for a in alerts] == [("rm_production_accuracy", "critical")]
    print(f"\n{len(rows)} production labels from {made} routed items")
