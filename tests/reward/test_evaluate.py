"""Held-out evaluation: the report from hand-made rewards, the export loader and a real tiny model."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import tether
from tether.errors import TetherInputError
from tether.labeling.export import PreferenceRow
from tether.labeling.export_files import write_export
from tether.reward.evaluate import evaluate_reward_model, heldout_rows, report_from_rewards
from tether.reward.scoring import RewardModel
from tether.spec import Spec, load_spec

SANDBOX_SPEC = Path(tether.__file__).parent / "templates" / "sandbox" / "spec.yaml"


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec(SANDBOX_SPEC)


def row(
    dim: str, stratum: str, chosen: str, rejected: str, task_id: int, *, tie: bool = False
) -> PreferenceRow:
    return PreferenceRow(
        prompt=f"prompt {task_id}",
        chosen=chosen,
        rejected=rejected,
        dimension=dim,
        stratum=stratum,
        origin="plan",
        margin=0.0 if tie else 1.0,
        agreement=1.0,
        n_votes=3,
        rater_ids=(1, 2, 3),
        rater_names=("a", "b", "c"),
        task_id=task_id,
        tie=tie,
    )


PAIRS = [
    row("safety", "routine", "one two", "one", 0),  # rewards 2 > 1: right
    row("safety", "hard", "one", "one two three", 1),  # 0 = 0: a tie, wrong
    row("honesty", "routine", "one two three", "one", 2),  # 1 < 3: wrong
    row("honesty", "routine", "one", "one", 3),  # 5 > -1: right
]
CHOSEN = np.array([2.0, 0.0, 1.0, 5.0])
REJECTED = np.array([1.0, 0.0, 3.0, -1.0])


def test_report_by_hand(spec: Spec) -> None:
    report = report_from_rewards(PAIRS, CHOSEN, REJECTED, spec=spec, a_is_chosen=[True, False, False, False])
    assert (report.n_pairs, report.overall.n, report.overall.accuracy) == (4, 4, 0.5)
    assert report.overall.low is not None and report.overall.low <= 0.5 <= (report.overall.high or 0)
    # Every spec dimension is listed, in spec order; those without pairs have n=0.
    assert list(report.by_dimension) == ["accuracy", "safety", "honesty", "concision"]
    assert report.by_dimension["safety"].accuracy == 0.5 and report.by_dimension["safety"].n == 2
    assert report.by_dimension["accuracy"].n == 0 and report.by_dimension["accuracy"].accuracy is None
    assert {s: a.accuracy for s, a in report.by_stratum.items()} == {"hard": 0.0, "routine": 2 / 3}
    # Words (chosen, rejected): (2, 1), (1, 3), (3, 1), (1, 1): longer picks right, wrong, right, half.
    assert report.baselines.pick_longer == pytest.approx(2.5 / 4)
    assert (report.baselines.pick_a, report.baselines.position_source) == (0.25, "canonical")
    rewards = [2, 0, 1, 5, 1, 0, 3, -1]
    words = [2, 1, 3, 1, 1, 3, 1, 1]
    assert report.length_correlation == pytest.approx(np.corrcoef(rewards, words)[0, 1])
    assert report.mean_reward == pytest.approx(np.mean(rewards))
    # Failures: pair 2 (rejected ahead by 2) and the tie, pair 1 (σ(0) = 0.5).
    assert [(f.task_id, f.dimension) for f in report.failures] == [(2, "honesty"), (1, "safety")]
    assert report.failures[0].confidence == pytest.approx(1 / (1 + math.exp(-2)))


def test_calibration_in_report_by_hand(spec: Spec) -> None:
    # One pair with r_c - r_r = log 3: points (0.75, 1) and (0.25, 0); each is off by 0.25.
    report = report_from_rewards(PAIRS[:1], np.array([math.log(3)]), np.array([0.0]), spec=spec)
    assert report.calibration.ece == pytest.approx(0.25)
    assert report.calibration.brier == pytest.approx(0.0625)
    assert report.calibration.n_bins == 10 and sum(b.count for b in report.calibration.bins) == 2
    assert report.baselines.position_source == "seeded"


def test_gold_accuracy_by_hand(spec: Spec) -> None:
    gold = ["chosen", "rejected", None, "chosen"]
    report = report_from_rewards(PAIRS, CHOSEN, REJECTED, spec=spec, gold=gold)  # type: ignore[arg-type]
    assert report.gold is not None
    # Pair 0: gold agrees with the label, model right. Pair 1: gold prefers the rejected side and the
    # model tied it (wrong). Pair 3: right. Pair 2 has no gold preference and is left out.
    assert (report.gold.overall.n, report.gold.overall.accuracy) == (3, 2 / 3)
    assert report.gold.by_dimension["safety"].accuracy == 0.5
    assert report.gold.by_dimension["honesty"].accuracy == 1.0
    assert report.gold.labels_agree == pytest.approx(2 / 3)


class WordCountScorer:
    """Reward = number of words: the pick-longer rule as a reward model."""

    def score(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return np.array([len(r.split()) for r in responses], dtype=np.float32)


def test_evaluate_skips_ties_and_keeps_positions_aligned(spec: Spec) -> None:
    rows = [*PAIRS[:2], row("safety", "edge", "x", "y", 9, tie=True), *PAIRS[2:]]
    report = evaluate_reward_model(
        WordCountScorer(),
        rows,
        spec=spec,
        a_is_chosen=[True, False, False, True, True],
        gold=lambda r: "chosen",
    )
    assert (report.n_pairs, report.ties_skipped) == (4, 1)
    # Word counts: (2, 1) right, (1, 3) wrong, (3, 1) right, (1, 1) tie: wrong.
    assert report.overall.accuracy == 0.5
    assert report.baselines.pick_a == 0.75  # the tie's position was dropped with it
    assert report.gold is not None and report.gold.overall.accuracy == 0.5
    with pytest.raises(TetherInputError, match="every row is a tie"):
        evaluate_reward_model(WordCountScorer(), rows[2:3], spec=spec)


def test_report_serializes_to_strict_json(spec: Spec) -> None:
    report = report_from_rewards(PAIRS, CHOSEN, REJECTED, spec=spec)
    report = replace(report, context={"reward model": "rm-1"})
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["by_dimension"]["accuracy"] == {"n": 0, "accuracy": None, "low": None, "high": None}
    assert data["context"] == {"reward model": "rm-1"} and data["spec_hash"] == report.spec_hash


def test_heldout_rows_round_trip_and_refuse_an_empty_test_split(tmp_path: Path) -> None:
    write_export(tmp_path / "e", PAIRS[:2], PAIRS[2:], fmt="jsonl", manifest={})
    assert heldout_rows(tmp_path / "e") == PAIRS[2:]
    write_export(tmp_path / "empty", PAIRS, [], fmt="jsonl", manifest={})
    with pytest.raises(TetherInputError, match="test split is empty"):
        heldout_rows(tmp_path / "empty")
    with pytest.raises(TetherInputError, match="no export there"):
        heldout_rows(tmp_path / "missing")


def test_end_to_end_with_a_tiny_checkpoint(tiny_rm: RewardModel, spec: Spec, make_sandbox_rows) -> None:  # type: ignore[no-untyped-def]
    rows = make_sandbox_rows(80)
    report = evaluate_reward_model(tiny_rm, rows, spec=spec, batch_size=16)
    assert report.n_pairs == len(rows) and report.overall.accuracy is not None
    assert sum(a.n for a in report.by_dimension.values()) == len(rows)
    assert report.calibration.ece is not None and 0 <= report.calibration.ece <= 1
    json.dumps(report.to_dict(), allow_nan=False)
