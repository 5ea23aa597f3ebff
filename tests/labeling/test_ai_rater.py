"""An AI rater works the queue through calibration like a person, against a local fake endpoint."""

from __future__ import annotations

import pytest

from tether.errors import TetherError
from tether.labeling.ai_judge import JudgeConfig
from tether.labeling.ai_rater import run_ai_rater
from tether.labeling.context import LabelingContext
from tether.project import Project
from tether.store.judgments import rater_judgments
from tether.store.raters import get_rater

from .fake_openai import FakeOpenAI, always, closed_port_endpoint, prefer_shorter

Lab = tuple[Project, LabelingContext]


def test_position_biased_judge_is_caught_by_calibration(lab: Lab) -> None:
    project, ctx = lab
    with FakeOpenAI(always("1")) as fake:
        config = JudgeConfig(endpoint=fake.endpoint, model="biased", backoff_s=0.0)
        summary = run_ai_rater(project, ctx, config, name="judge", limit=20)
        assert len(fake.requests) == 40  # every pair judged in both orders
    assert summary.judgments == 20
    assert summary.position_inconsistent == 20
    # Always "the first one" becomes a tie once both orders are asked: wrong on every anchor.
    assert summary.status == "needs_retraining"
    with project.store.session() as s:
        judge = get_rater(s, project_id=project.project_id, name="judge")
        judgments = rater_judgments(s, rater_id=judge.id)
    assert judge.kind == "ai"
    assert {j.choice for j in judgments} == {"tie"}
    assert all(len(j.rationale) >= ctx.policy.min_rationale_chars for j in judgments)


def test_consistent_judge_finishes_calibration(lab: Lab) -> None:
    project, ctx = lab
    with FakeOpenAI(prefer_shorter()) as fake:
        summary = run_ai_rater(
            project, ctx, JudgeConfig(endpoint=fake.endpoint, model="short"), name="s", limit=20
        )
    assert summary.position_inconsistent == 0
    assert summary.status in ("active", "needs_retraining")


def test_unreachable_endpoint_stops_with_what_was_saved(lab: Lab) -> None:
    project, ctx = lab
    config = JudgeConfig(endpoint=closed_port_endpoint(), model="m", max_retries=1, backoff_s=0.0)
    with pytest.raises(TetherError, match="0 judgments were saved"):
        run_ai_rater(project, ctx, config, name="down")
