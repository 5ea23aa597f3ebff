"""Kept ties in reward training: the loss pulls a tie pair's rewards together, accuracy skips ties,
and an export keeps the tie majority of counterfactual pairs (origin probe:<name>) only."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tether.labeling.export import COUNTERFACTUAL_ORIGINS, TaskVotes, Vote, aggregate
from tether.reward.data import EncodedPair, PairCollator, load_preference_data
from tether.reward.loss import bradley_terry_loss, decided_accuracy, tie_loss


def test_the_tie_loss_by_hand_and_its_pull_toward_equal_rewards() -> None:
    # −½·log σ(g) − ½·log σ(−g): log 2 at g = 0; at g = 2, ½·(log(1 + e⁻²) + log(1 + e²)).
    assert tie_loss(torch.tensor([0.0])).item() == pytest.approx(math.log(2), abs=1e-6)
    expected = 0.5 * (math.log1p(math.exp(-2)) + math.log1p(math.exp(2)))
    assert tie_loss(torch.tensor([2.0])).item() == pytest.approx(expected, abs=1e-6)
    gap = torch.tensor([2.0, -1.5], requires_grad=True)
    tie_loss(gap).sum().backward()
    # d/dg = ½·(σ(g) − σ(−g)): same sign as g, so a gradient step moves g toward 0.
    expected_grad = [0.5 * (1 / (1 + math.exp(-g)) - 1 / (1 + math.exp(g))) for g in (2.0, -1.5)]
    assert gap.grad is not None and gap.grad.tolist() == pytest.approx(expected_grad, abs=1e-6)


def test_a_batch_mixes_preferences_and_ties() -> None:
    chosen, rejected = torch.tensor([1.0, 0.5]), torch.tensor([0.0, 0.5])
    tie = torch.tensor([False, True])
    mixed = bradley_terry_loss(chosen, rejected, torch.tensor([0.0, 0.0]), tie=tie).item()
    assert mixed == pytest.approx((math.log1p(math.exp(-1)) + math.log(2)) / 2, abs=1e-6)
    plain = bradley_terry_loss(chosen, rejected, torch.tensor([0.0, 0.0]))
    assert torch.equal(
        plain, bradley_terry_loss(chosen, rejected, torch.tensor([0.0, 0.0]), tie=~tie & False)
    )
    assert decided_accuracy(chosen, rejected, tie).item() == 1.0  # the tie is not counted
    assert math.isnan(decided_accuracy(chosen, rejected, torch.tensor([True, True])).item())


def test_only_batches_with_ties_carry_the_tie_mask() -> None:
    collate = PairCollator(pad_id=0)
    assert "tie" not in collate([EncodedPair([1, 2], [3], 0.5), EncodedPair([4], [5], 0.0)])
    batch = collate([EncodedPair([1, 2], [3], 0.5), EncodedPair([4], [5], 0.0, tie=True)])
    assert batch["tie"].tolist() == [False, True]


def _task(task_id: int, origin: str, *choices: str) -> TaskVotes:
    votes = tuple(Vote(i, f"r{i}", c, 0 if c == "tie" else 2) for i, c in enumerate(choices))  # type: ignore[arg-type]
    return TaskVotes(task_id, "p", "a", "b", "helpful", "s", origin, votes)


def test_counterfactual_ties_are_kept_and_others_dropped() -> None:
    tasks = [_task(1, "probe:confident", "tie", "tie", "A"), _task(2, "plan", "tie", "tie", "A"),
             _task(3, "probe:confident", "A", "B", "tie")]  # fmt: skip
    rows, stats = aggregate(tasks, ties_of=COUNTERFACTUAL_ORIGINS)
    assert [(r.task_id, r.tie) for r in rows] == [(1, True)]  # no plurality at all is still dropped
    assert (stats.kept_ties, stats.dropped_ties, stats.dropped_no_majority) == (1, 1, 1)


def test_training_ties_train_and_held_out_ties_are_skipped(tmp_path: Path) -> None:
    def row(task_id: int, tie: bool) -> dict[str, object]:
        return {
            "prompt": f"p{task_id}", "chosen": "a", "rejected": "b", "dimension": "helpful", "stratum": "s",
            "origin": "probe:confident" if tie else "plan", "margin": 0.0 if tie else 0.5, "agreement": 1.0,
            "n_votes": 1, "rater_ids": [1], "rater_names": ["r"], "task_id": task_id, "tie": tie,
            "spec_hash": "",
        }  # fmt: skip

    for name, rows in (("train", [row(1, False), row(2, True)]), ("test", [row(3, False), row(4, True)])):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    data = load_preference_data(tmp_path)
    assert [(p.prompt, p.tie) for p in data.train] == [("p1", False), ("p2", True)]
    assert [p.prompt for p in data.test] == ["p3"] and data.ties_dropped == 1
