"""`tether raters status`: the rater table and pool agreement, from the store.

The figures come from `labeling.metrics` over a columnar table of every judgment; this module
only turns store rows into that table and adds each rater's status and its latest reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tether.labeling.edit_bias import PROBE_PREFIX, EditBias, EditVote, edit_biases
from tether.labeling.judgment_table import JudgmentTable
from tether.labeling.metrics import rater_report
from tether.labeling.peer import PeerFlagRule
from tether.project import Project
from tether.store.judgments import JudgmentFacts, counterfactual_votes, judgment_facts
from tether.store.raters import (
    RaterRecord,
    held_label_counts,
    list_raters,
    rater_events,
    rater_recalibrations,
)

CHOICE_CODE = {"A": 0, "B": 1, "tie": 2}
LENGTH_RATIO = 1.2
"""A response is 'longer' when it has more than 20% more characters than the other."""


def _longer(len_a: np.ndarray, len_b: np.ndarray) -> np.ndarray:
    out = np.full(len(len_a), -1, dtype=np.int8)
    out[len_a > LENGTH_RATIO * len_b] = 0
    out[len_b > LENGTH_RATIO * len_a] = 1
    return out


def judgment_table(
    facts: Sequence[JudgmentFacts], raters: Sequence[RaterRecord], dimensions: list[str]
) -> JudgmentTable:
    """Columns for the metrics. Each anchor judgment is its own item, so that every
    calibration round and hidden anchor counts toward agreement with the experts."""
    index = {r.id: i for i, r in enumerate(raters)}
    dims = list(dimensions) + sorted({f.dimension for f in facts} - set(dimensions))
    dim_index = {d: i for i, d in enumerate(dims)}
    texts: dict[str, int] = {}
    choice = np.array([CHOICE_CODE[f.choice] for f in facts], dtype=np.int8)
    is_anchor = np.array([f.task_kind == "anchor" for f in facts], dtype=bool)
    item = np.array([f.task_id for f in facts], dtype=np.int64)
    item[is_anchor] = -1 - np.flatnonzero(is_anchor)
    correct = np.array([-1 if f.correct is None else int(f.correct) for f in facts], dtype=np.int8)
    return JudgmentTable(
        rater=np.array([index[f.rater_id] for f in facts], dtype=np.int64),
        item=item,
        dimension=np.array([dim_index[f.dimension] for f in facts], dtype=np.int64),
        choice=choice,
        chose_left=np.array([f.shown_choice == "A" for f in facts], dtype=bool) & (choice != 2),
        longer=_longer(np.array([f.len_a for f in facts]), np.array([f.len_b for f in facts])),
        seconds=np.array([f.seconds for f in facts], dtype=np.float64),
        rationale_len=np.array([len(f.rationale) for f in facts], dtype=np.int64),
        rationale_id=np.array([texts.setdefault(f.rationale, len(texts)) for f in facts], dtype=np.int64),
        anchor_correct=correct,
        overlap=np.array([f.task_kind == "compare" and f.raters_needed > 1 for f in facts], dtype=bool),
        rater_names=[r.name for r in raters],
        dimension_names=dims,
        practice=np.array([f.purpose == "calibration" for f in facts], dtype=bool),
    )


def _edit_vote(rater: str, origin: str, edited_side: str, choice: str) -> EditVote:
    edited = "A" if edited_side == "a" else "B"
    return EditVote(rater, origin.removeprefix(PROBE_PREFIX), choice == edited)


def raters_status(project: Project) -> dict[str, Any]:
    """Every rater's status, latest reason and figures, plus the pool's agreement (JSON-safe).

    Expert agreement comes three ways: `anchor_agreement` over every anchor, and apart for
    calibration rounds and hidden anchors, since a rater can be shown calibration verdicts
    and replay them, while hidden anchors look like any other task."""
    with project.store.session() as session:
        raters = list_raters(session, project_id=project.project_id)
        facts = judgment_facts(session, project_id=project.project_id)
        history = {r.id: rater_events(session, rater_id=r.id) for r in raters}
        cycles = {r.id: len(rater_recalibrations(session, rater_id=r.id)) for r in raters}
        held = held_label_counts(session, project_id=project.project_id)
        counterfactual = counterfactual_votes(session, project_id=project.project_id, prefix=PROBE_PREFIX)
    # A rater who disagrees with their peers more often than the project tolerates disagreeing
    # with the experts is a candidate for review (the rest of the rule: `PeerFlagRule`).
    rule = PeerFlagRule(floor=1.0 - project.spec.labeling.max_expert_disagreement)
    table = judgment_table(facts, raters, project.spec.dimension_ids)
    report = rater_report(table, peer_rule=rule).to_dict()
    stats = {row["name"]: row for row in report["raters"]}
    biased: dict[str, list[EditBias]] = {}
    for bias in edit_biases([_edit_vote(*v) for v in counterfactual]):
        biased.setdefault(bias.rater, []).append(bias)
    rows = []
    for rater in raters:
        event = history[rater.id][-1] if history[rater.id] else None
        rows.append(
            {
                "name": rater.name,
                "kind": rater.kind,
                "status": rater.status,
                "in_training_data": rater.status == "active",
                "reason": None if event is None else event.reason,
                # Failed hidden-anchor windows, and the live labels they still hold out of training.
                "recalibrations": cycles[rater.id],
                "held_labels": held.get(rater.id, 0),
                **{k: v for k, v in stats.get(rater.name, {}).items() if k != "name"},
                # Style biases shown on the loop's counterfactual pairs (`tether.labeling.edit_bias`).
                "edit_flags": [
                    {"probe": b.probe, "detail": b.describe()} for b in biased.get(rater.name, [])
                ],
            }
        )
    return {"spec_hash": project.spec_hash, "raters": rows, "pool": report["pool"], "judgments": len(facts)}
