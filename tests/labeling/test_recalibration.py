"""Recalibration that cannot be gamed, driven through the real HTTP API (SQLite, and PostgreSQL).

The project has 40 clear-cut anchors, twice the calibration set, on which the experts always
prefer the longer, complete answer. Raters take work from `/api/v1` exactly as a client would.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tether.labeling import raters as rater_ops
from tether.labeling.batches import plan_batch
from tether.labeling.context import LabelingContext, labeling_context
from tether.labeling.dataset import export_preferences
from tether.labeling.export_files import load_export
from tether.labeling.report import raters_status
from tether.project import Project
from tether.sandbox.build import sandbox_prompts, store_prompts
from tether.sandbox.config import SandboxConfig
from tether.scaffold import init_project
from tether.store.judgments import rater_judgments
from tether.store.raters import RaterRecord, get_rater, held_label_counts, rater_recalibrations
from tether.store.tasks import rater_assignments
from tether.web.app import create_app

from .conftest import sft_pairs

N_ANCHORS = 40
RATIONALE = "Compared both answers against the rubric."
Item = dict[str, Any]
Strategy = Callable[[Item], str]


@dataclasses.dataclass
class Lab:
    project: Project
    ctx: LabelingContext
    client: TestClient

    def expert_text(self, prompt: str) -> str | None:
        """The response the experts prefer, if `prompt` is an anchor's (the test's oracle)."""
        anchor = next((a for a in self.ctx.anchors.values() if a.prompt == prompt), None)
        if anchor is None:
            return None
        return anchor.response_a if anchor.label == "A" else anchor.response_b

    def rater(self, name: str) -> RaterRecord:
        with self.project.store.session() as s:
            return get_rater(s, project_id=self.project.project_id, name=name)


def write_anchors(path: Path) -> None:
    """Anchors whose expert choice is always the longer answer, alternating between A and B."""
    dims = ("safety", "honesty", "accuracy", "concision")
    lines = []
    for i in range(N_ANCHORS):
        short, long = (
            f"No ({i}).",
            f"Here is a complete answer to question {i}, with the reasons spelled out.",
        )
        a_is_long = i % 2 == 0
        lines.append(
            {
                "id": f"anchor-{i:02d}",
                "prompt": f"Anchor question {i}: what should the assistant say?",
                "response_a": long if a_is_long else short,
                "response_b": short if a_is_long else long,
                "label": "A" if a_is_long else "B",
                "dimension": dims[i % 4],
                "clear_cut": True,
                "explanation": "The complete answer is the better one.",
            }
        )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


@pytest.fixture
def lab(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Lab:
    monkeypatch.setenv("TETHER_DB_URL", db_url)
    project = init_project(tmp_path / "lab", template="sandbox")
    write_anchors(project.root / project.spec.labeling.anchors_path)
    store_prompts(project, sandbox_prompts(SandboxConfig(n_prompts=1200)), 0)
    plan_batch(project, n=120, sampler=sft_pairs, labels=("sft", "sft"), seed=0)
    ctx = labeling_context(project, seed=0)
    ctx = dataclasses.replace(ctx, policy=ctx.policy.model_copy(update={"hidden_anchor_rate": 0.3}))
    return Lab(project, ctx, TestClient(create_app(project, ctx)))


def step(lab: Lab, token: str, strategy: Strategy) -> tuple[Item, Item] | None:
    """One fetch and answer through the API; None when the rater's queue is empty."""
    headers = {"Authorization": f"Bearer {token}"}
    fetched = lab.client.get("/api/v1/assignments/next", headers=headers)
    if fetched.status_code == 204:
        return None
    assert fetched.status_code == 200, fetched.text
    item = fetched.json()
    body = {"assignment_id": item["assignment_id"], "choice": strategy(item), "strength": 2}
    posted = lab.client.post(
        "/api/v1/judgments",
        json={**body, "rationale": RATIONALE, "seconds": 9.0},
        headers={**headers, "Idempotency-Key": f"k-{item['assignment_id']}"},
    )
    assert posted.status_code == 201, posted.text
    return item, posted.json()


def shorter(item: Item) -> str:
    return "A" if len(item["left"]) <= len(item["right"]) else "B"


def longer(item: Item) -> str:
    return "B" if shorter(item) == "A" else "A"


class Copier:
    """Prefers the shorter answer, except on anchors whose expert verdict it has been shown: those
    it replays, recognizing them by prompt and answer text whatever side they are shown on."""

    def __init__(self) -> None:
        self.memory: dict[str, str] = {}

    def __call__(self, item: Item) -> str:
        known = self.memory.get(item["prompt"])
        if known is None:
            return shorter(item)
        return "A" if item["left"] == known else "B"

    def learn(self, item: Item, result: Item) -> None:
        if result["feedback"] is not None:
            shown = result["feedback"]["expert_choice"]
            self.memory[item["prompt"]] = item["left"] if shown == "A" else item["right"]


def add(lab: Lab, name: str, *, active: bool = False) -> str:
    _, token = rater_ops.add_person(lab.project, name=name)
    if active:
        rater_ops.readmit(lab.project, name=name, reason="test: calibrated elsewhere")
    return token


def label_live(lab: Lab, token: str, n: int) -> None:
    """An honest rater: the complete answer wins, anchors included."""
    for _ in range(n):
        assert step(lab, token, longer) is not None


def test_copier_is_excluded_and_its_live_labels_leave_the_export(lab: Lab, tmp_path: Path) -> None:
    label_live(lab, add(lab, "ana", active=True), 40)
    token, copier = add(lab, "copier"), Copier()
    shown_after_round_one = []
    while (done := step(lab, token, copier)) is not None:
        item, result = done
        if item["purpose"] == "calibration" and len(copier.memory) == len(lab.ctx.calibration_keys):
            shown_after_round_one.append(result["feedback"])
        copier.learn(item, result)
    copier_rater = lab.rater("copier")
    assert copier_rater.status == "excluded"
    with lab.project.store.session() as s:
        cycles = rater_recalibrations(s, rater_id=copier_rater.id)
        live = [j for j in rater_judgments(s, rater_id=copier_rater.id, purpose="live")]
    sent_back = [c for c in cycles if c.outcome == "needs_retraining"]
    assert 1 <= len(sent_back) <= lab.ctx.policy.max_recalibrations
    # It passed the retry by replaying round one's verdicts, so it labelled live work...
    assert len(live) > 10
    # ...and no later calibration answer revealed a verdict it could replay.
    assert shown_after_round_one and all(f is None for f in shown_after_round_one)
    kept = {}
    for flag in (False, True):
        out = tmp_path / f"export-{flag}"
        export_preferences(lab.project, out=out, include_excluded=flag, heldout=0.0)
        kept[flag] = {n for row in load_export(out)["train"] for n in row["rater_names"]}
    assert "copier" not in kept[False] and "ana" in kept[False]
    assert "copier" in kept[True]
    row = next(r for r in raters_status(lab.project)["raters"] if r["name"] == "copier")
    # Calibration (replayed) and hidden anchors (met among live work) tell different stories.
    assert row["hidden_anchor_agreement"] == 0.0 and row["calibration_agreement"] > 0.3
    assert row["recalibrations"] == len(cycles)


def oracle(lab: Lab, *, hidden_right: Callable[[], bool]) -> Strategy:
    """Calibration anchors as the experts, live work by length, hidden anchors per `hidden_right`."""

    def choose(item: Item) -> str:
        expert = lab.expert_text(item["prompt"])
        if expert is None:
            return longer(item)
        right = "A" if item["left"] == expert else "B"
        if item["purpose"] == "calibration" or hidden_right():
            return right
        return "B" if right == "A" else "A"

    return choose


def run_until(lab: Lab, token: str, strategy: Strategy, done: Callable[[RaterRecord], bool]) -> list[Item]:
    """Answer until `done(rater)`; returns the results of the items answered."""
    results = []
    while not done(lab.rater("bo")):
        answered = step(lab, token, strategy)
        assert answered is not None, "bo ran out of work"
        results.append({**answered[0], **answered[1]})
    return results


def hidden_since(lab: Lab, rater: RaterRecord) -> int:
    with lab.project.store.session() as s:
        return len(rater_judgments(s, rater_id=rater.id, purpose="hidden_anchor", after=rater.readmitted_at))


def held(lab: Lab) -> dict[int, int]:
    with lab.project.store.session() as s:
        return held_label_counts(s, project_id=lab.project.project_id)


def test_cycles_hold_labels_restart_the_window_and_end_in_exclusion(lab: Lab) -> None:
    token = add(lab, "bo")
    drift = {"wrong": True}
    strategy = oracle(lab, hidden_right=lambda: not drift["wrong"])
    run_until(lab, token, strategy, lambda r: r.status == "active")  # round 1, as the experts
    bo = lab.rater("bo")
    # Cycle 1: every hidden anchor wrong; the window fails at the sixth.
    run_until(lab, token, strategy, lambda r: r.status != "active")
    assert lab.rater("bo").status == "needs_retraining"
    with lab.project.store.session() as s:
        (cycle,) = rater_recalibrations(s, rater_id=bo.id)
        hidden = rater_judgments(s, rater_id=bo.id, purpose="hidden_anchor")
        live = rater_judgments(s, rater_id=bo.id, purpose="live")
    assert cycle.first_judgment_id == hidden[0].id and cycle.failed_judgment_id == hidden[5].id
    window_live = [j for j in live if j.id >= cycle.first_judgment_id]
    assert window_live and len(window_live) < len(live)  # labels before the window are not held
    assert held(lab) == {bo.id: len(window_live)}
    _recalibrate_on_unseen_anchors(lab, token, strategy, seen_hidden={j.task_id for j in hidden})
    assert held(lab) == {}  # passed: the window's labels count again
    # The window restarted at readmission: 1 wrong of 6 passes. Counted over every hidden anchor,
    # the last 10 would hold 4 old misses too (5 of 10) and send bo back at once.
    wrong_first = iter([False])
    strategy_after = oracle(lab, hidden_right=lambda: next(wrong_first, True))
    run_until(lab, token, strategy_after, lambda r: hidden_since(lab, r) == 6)
    assert lab.rater("bo").status == "active"
    drift["wrong"] = True
    run_until(lab, token, strategy, lambda r: r.status != "active")  # cycle 2
    assert lab.rater("bo").status == "needs_retraining"
    run_until(lab, token, strategy, lambda r: r.status == "active")
    run_until(lab, token, strategy, lambda r: r.status != "active")  # the third failure
    final = lab.rater("bo")
    assert final.status == "excluded"
    with lab.project.store.session() as s:
        outcomes = [c.outcome for c in rater_recalibrations(s, rater_id=bo.id)]
    assert outcomes == ["needs_retraining"] * lab.ctx.policy.max_recalibrations + ["excluded"]
    assert held(lab)[bo.id] > 0  # the last window's labels stay out for good


def _recalibrate_on_unseen_anchors(
    lab: Lab, token: str, strategy: Strategy, *, seen_hidden: set[int]
) -> None:
    """The recalibration round takes every anchor bo has not answered, and shows no verdict."""
    results = run_until(lab, token, strategy, lambda r: r.status == "active")
    assert all(r["purpose"] == "calibration" and r["feedback"] is None for r in results)
    bo = lab.rater("bo")
    with lab.project.store.session() as s:
        rounds: dict[int, set[int]] = {}
        for a in rater_assignments(s, rater_id=bo.id, purpose="calibration"):
            rounds.setdefault(a.round, set()).add(a.task_id)
    first, again = rounds[1], rounds[bo.calibration_round]
    unseen = set(lab.ctx.anchor_tasks.values()) - first - seen_hidden
    size = len(lab.ctx.calibration_keys)
    assert len(again) == size and unseen <= again  # all 14 unseen, topped up from the calibration set
    assert len(again - unseen) == size - len(unseen)
