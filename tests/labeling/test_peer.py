"""Peer agreement per dimension and its flag: hand-computed tables, then a naive loop on random data."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import pytest

from tests.labeling.test_metrics import random_matrix, table_from_matrix
from tether.labeling.judgment_table import JudgmentTable
from tether.labeling.metrics import RaterStats, rater_report
from tether.labeling.peer import PeerFlagRule, peer_flags, pool_medians

A, B, TIE = 0, 1, 2
NAMES = ["ann", "bob", "cy", "dee"]
DIMS = ["helpful", "harmless"]
nan = float("nan")


def overlapped(item: int, dimension: str, **choices: int) -> list[dict[str, Any]]:
    return [
        {"rater": r, "item": item, "dimension": dimension, "choice": c, "overlap": True}
        for r, c in choices.items()
    ]


def by_name(table: JudgmentTable, rule: PeerFlagRule | None = None) -> dict[str, RaterStats]:
    return {r.name: r for r in rater_report(table, peer_rule=rule).raters}


def test_peer_agreement_by_dimension_by_hand() -> None:
    rows = (
        overlapped(1, "helpful", ann=A, bob=A, cy=A, dee=B)
        + overlapped(2, "helpful", ann=A, bob=B, cy=TIE)
        + overlapped(3, "helpful", ann=A, bob=B)
        + overlapped(4, "harmless", ann=TIE, bob=TIE, cy=B, dee=TIE)
        + overlapped(5, "harmless", ann=B, bob=A, dee=A)
        + [{"rater": "ann", "item": 9, "dimension": "harmless", "choice": A}]
    )
    got = by_name(JudgmentTable.from_rows(rows, rater_names=NAMES, dimension_names=DIMS))
    # helpful: item 1 counts for everyone (ann, bob, cy match the others' A; dee's B misses); item 2's
    # others always split 1-1 and item 3 has one other, so neither counts.
    # harmless: item 4: ann, bob and dee match the others' tie, cy (others tie x3) misses; item 5: ann's
    # others say A, A (miss), bob's and dee's split. Item 9 is not overlapped.
    expected = {
        "ann": ({"helpful": 1.0, "harmless": 0.5}, {"helpful": 1, "harmless": 2}),
        "bob": ({"helpful": 1.0, "harmless": 1.0}, {"helpful": 1, "harmless": 1}),
        "cy": ({"helpful": 1.0, "harmless": 0.0}, {"helpful": 1, "harmless": 1}),
        "dee": ({"helpful": 0.0, "harmless": 1.0}, {"helpful": 1, "harmless": 1}),
    }
    assert {n: (r.peer_agreement, r.peer_items) for n, r in got.items()} == expected
    # Per dimension adds up to the overall majority figure.
    assert got["ann"].majority_agreement == pytest.approx(2 / 3) and got["ann"].majority_items == 3
    assert all(r.peer_flags == [] for r in got.values())  # one or two tasks each: too few to flag


def gamer_table(n_items: int) -> JudgmentTable:
    """Four raters on every item; dee answers B on harmless items where everyone else answers A."""
    rows: list[dict[str, Any]] = []
    for i in range(n_items):
        rows += overlapped(i, "helpful", ann=A, bob=A, cy=B if i % 5 == 0 else A, dee=A)
        rows += overlapped(1000 + i, "harmless", ann=A, bob=A, cy=A, dee=B)
    return JudgmentTable.from_rows(rows, rater_names=NAMES, dimension_names=DIMS)


def test_a_rater_against_the_pool_on_one_dimension_is_flagged_there_only() -> None:
    report = rater_report(gamer_table(30))
    got = {r.name: r for r in report.raters}
    # harmless: dee's others say A x3 on all 30 (0/30); everyone else's others say A, A, B: 30/30.
    assert got["dee"].peer_agreement["harmless"] == 0.0 and got["dee"].peer_items["harmless"] == 30
    assert got["ann"].peer_agreement["harmless"] == 1.0
    # helpful: cy disagrees on 6 of 30 (others A x3) and the rest match every time, cy included.
    assert got["cy"].peer_agreement["helpful"] == pytest.approx(24 / 30)
    assert report.pool.peer_median == {"helpful": 1.0, "harmless": 1.0}
    assert {n: r.peer_flags for n, r in got.items()} == {"ann": [], "bob": [], "cy": [], "dee": ["harmless"]}
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["raters"][3]["peer_flags"] == ["harmless"]


def test_too_few_tasks_are_not_flagged() -> None:
    assert by_name(gamer_table(19))["dee"].peer_flags == []  # 19 < min_items 20
    assert by_name(gamer_table(19), PeerFlagRule(min_items=19))["dee"].peer_flags == ["harmless"]


def test_flag_rule_by_hand() -> None:
    # z = 0 makes the interval's upper end the point estimate itself, so the figures read directly.
    rule = PeerFlagRule(floor=0.75, margin=0.2, min_items=20, min_raters=3, z=0.0)
    # (R, D): raters x dimensions "easy", "hard", "few".
    agreement = np.array(
        [
            [0.95, 0.55, 0.9],
            [0.90, 0.60, 0.9],
            [0.92, 0.58, 0.9],
            [0.50, 0.30, 0.1],  # far below on every dimension
            [0.74, 0.50, nan],  # below the floor but within the margin of "easy"'s median
        ]
    )
    items = np.array([[40, 40, 40], [40, 40, 40], [40, 40, 5], [40, 40, 40], [19, 40, 0]])
    medians = pool_medians(agreement, items, rule)
    # easy: raters 0-3 measured (rater 4 has 19 tasks) -> median of .95, .90, .92, .50 = .91.
    # hard: all five -> median .55. few: only raters 0, 1 and 3 have 20+ tasks -> median .9.
    assert medians == pytest.approx([0.91, 0.55, 0.9])
    flags = peer_flags(agreement, items, medians, rule)
    # Rater 3: .50 < .71 on easy, .30 < .35 on hard, .1 < .7 on few. Rater 4: 19 tasks on easy; .50 on
    # hard is within .2 of .55. A pool at .55 is not flagged as a whole although it is below the floor.
    assert flags.tolist() == [
        [False, False, False],
        [False, False, False],
        [False, False, False],
        [True, True, True],
        [False, False, False],
    ]
    # Above the floor nothing is flagged, however far below the median: .80 in a pool at 1.0 is fine.
    high = np.array([[1.0], [1.0], [1.0], [0.80]])
    high_items = np.full((4, 1), 40)
    assert not peer_flags(high, high_items, pool_medians(high, high_items, rule), rule).any()
    # Without min_raters measured raters there is no pool median to be below.
    assert np.isnan(pool_medians(agreement[:2], items[:2], rule)).all()


@pytest.mark.parametrize("kwargs", [{"floor": 1.5}, {"margin": -0.1}, {"min_items": 0}, {"min_raters": 1}])
def test_flag_rule_rejects_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="PeerFlagRule"):
        PeerFlagRule(**kwargs)


@pytest.mark.parametrize("seed", range(3))
def test_peer_agreement_matches_a_naive_loop(seed: int) -> None:
    matrix = random_matrix(seed, n_raters=5, n_items=60)
    dims = np.random.default_rng(seed + 7).integers(0, 2, size=60)
    report = rater_report(table_from_matrix(matrix, dims, seed))
    for r, rater in enumerate(report.raters):
        for d, name in enumerate(DIMS):
            hits = judged = 0
            for column in matrix[:, dims == d].T:
                others = [v for o, v in enumerate(column) if o != r and not np.isnan(v)]
                ranked = Counter(others).most_common()
                tied = len(ranked) > 1 and ranked[0][1] == ranked[1][1]
                if np.isnan(column[r]) or len(others) < 2 or tied:
                    continue
                judged, hits = judged + 1, hits + int(ranked[0][0] == column[r])
            assert rater.peer_items[name] == judged
            assert rater.peer_agreement[name] == (pytest.approx(hits / judged) if judged else None)
