"""Rater agreement and bias figures: hand-computed tables, then libraries and naive loops on random data."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections import Counter
from typing import Any

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from tether.errors import TetherInputError
from tether.labeling.judgment_table import JudgmentTable, JudgmentTableError
from tether.labeling.metrics import (
    RaterReport,
    RaterStats,
    cohen_kappa,
    krippendorff_alpha_nominal,
    others_majority,
    pairwise_agreement,
    rater_report,
)

A, B, TIE = 0, 1, 2
NAMES = ["ann", "bob", "cy", "dee"]
DIMS = ["helpful", "harmless"]


def make_table(rows: list[dict[str, Any]], names: list[str] = NAMES) -> JudgmentTable:
    return JudgmentTable.from_rows(rows, rater_names=names, dimension_names=DIMS)


def overlapped(item: int, **choices: int) -> list[dict[str, Any]]:
    """One overlapped item judged by the named raters, e.g. overlapped(1, ann=A, bob=B)."""
    return [
        {"rater": rater, "item": item, "choice": choice, "overlap": True} for rater, choice in choices.items()
    ]


def stats(report: RaterReport, name: str) -> RaterStats:
    return next(r for r in report.raters if r.name == name)


# ---- per-rater figures, by hand --------------------------------------------------------------------


def test_per_rater_figures_by_hand() -> None:
    ann = [  # choice, chose_left, longer, seconds, rationale_len, rationale_id, anchor_correct
        (A, True, 0, 4.0, 10, 7, 1),
        (B, True, -1, 1.0, 20, 7, 0),
        (A, False, 1, 10.0, 30, 8, 1),
        (TIE, False, 0, 3.0, 0, 9, -1),
    ]
    bob = [(A, True, -1, 5.0, 5, 8, -1), (B, False, -1, 2.0, 5, 20, -1), (B, True, -1, 9.0, 5, 21, -1)]
    keys = ("choice", "chose_left", "longer", "seconds", "rationale_len", "rationale_id", "anchor_correct")
    rows = [{"rater": "ann", "item": i, **dict(zip(keys, v, strict=True))} for i, v in enumerate(ann)]
    rows += [{"rater": "bob", "item": 10 + i, **dict(zip(keys, v, strict=True))} for i, v in enumerate(bob)]
    report = rater_report(make_table(rows))

    # ann: anchors 1, 0, 1 -> 2/3 of 3. Non-ties are rows 0-2: left, left, right -> 2/3.
    # Longer known on non-ties in rows 0 (longer A, chose A: hit) and 2 (longer B, chose A: miss) -> 1/2.
    # One tie in 4. Seconds 1, 3, 4, 10 -> median 3.5. Chars (10+20+30+0)/4 = 15. Ids 7, 7, 8, 9 -> 2/4.
    expected = {"name": "ann", "judgments": 4, "anchor_agreement": 2 / 3, "anchors_judged": 3}
    expected |= {"majority_agreement": None, "majority_items": 0, "position_bias": 2 / 3, "length_bias": 0.5}
    expected |= {"tie_rate": 0.25, "median_seconds": 3.5, "mean_rationale_chars": 15.0}
    # No row is a calibration (practice) row, so every anchor counts as a hidden one.
    expected |= {"calibration_agreement": None, "calibration_anchors": 0}
    expected |= {"hidden_anchor_agreement": 2 / 3, "hidden_anchors_judged": 3}
    got = dataclasses.asdict(stats(report, "ann"))
    # No overlapped items: no peer figures on any dimension (checked apart: approx does not nest).
    peers = {key: got.pop(key) for key in ("peer_agreement", "peer_items", "peer_flags")}
    assert peers == {
        "peer_agreement": {"helpful": None, "harmless": None},
        "peer_items": {"helpful": 0, "harmless": 0},
        "peer_flags": [],
    }
    assert got == pytest.approx(expected | {"repeated_rationale_share": 0.5})
    # bob: no anchors, no known length; median of 5, 2, 9 is 5; id 8 is also ann's, which does not count.
    bob_stats = stats(report, "bob")
    assert (bob_stats.anchor_agreement, bob_stats.anchors_judged, bob_stats.length_bias) == (None, 0, None)
    assert (bob_stats.position_bias, bob_stats.median_seconds) == (pytest.approx(2 / 3), 5.0)
    assert (bob_stats.repeated_rationale_share, bob_stats.tie_rate) == (0.0, 0.0)
    # cy judged nothing.
    cy = stats(report, "cy")
    assert (cy.judgments, cy.tie_rate, cy.repeated_rationale_share) == (0, 0.0, 0.0)
    assert (cy.median_seconds, cy.mean_rationale_chars, cy.position_bias) == (None, None, None)


def majority_table() -> JudgmentTable:
    return make_table(
        overlapped(1, ann=A, bob=A, cy=A, dee=B)
        + overlapped(2, ann=A, bob=B, cy=TIE)
        + overlapped(3, ann=A, bob=B)
        + overlapped(4, ann=TIE, bob=TIE, cy=B, dee=TIE)
        + overlapped(5, ann=B, bob=A, dee=A)
        + [{"rater": "ann", "item": 9, "choice": A}, {"rater": "bob", "item": 9, "choice": A}]
    )


def test_majority_agreement_by_hand() -> None:
    report = rater_report(majority_table())
    # Item 1: everyone but dee matches the others' A. Item 2: the others split 1-1, skipped.
    # Item 3: one other only, skipped. Item 4: the others' majority is tie; cy (B) misses, the rest match.
    # Item 5: ann's others say A, A: a miss; bob's and dee's others split, skipped. Item 9 is not overlapped.
    expected = {"ann": (2 / 3, 3), "bob": (1.0, 2), "cy": (0.5, 2), "dee": (0.5, 2)}
    got = {r.name: (r.majority_agreement, r.majority_items) for r in report.raters}
    assert got == {name: (pytest.approx(share), n) for name, (share, n) in expected.items()}


def test_others_majority_marks_ties_for_first_place_ineligible() -> None:
    eligible, agrees = others_majority([5, 5, 5, 5], [A, A, B, B])
    # Each judgment's three others split 2-1 toward the other side: all eligible, none agree.
    assert eligible.tolist() == [True] * 4 and agrees.tolist() == [False] * 4
    eligible, _ = others_majority([5, 5, 5], [A, B, TIE])
    assert eligible.tolist() == [False] * 3


def test_duplicate_judgments_count_only_the_first() -> None:
    rows = overlapped(1, ann=A, bob=A, cy=A) + overlapped(1, ann=B)
    report = rater_report(make_table(rows))
    assert stats(report, "ann").judgments == 1
    assert report.pool.pairwise_agreement == 1.0  # with ann's second answer it would be 1/6


# ---- pool figures, by hand -------------------------------------------------------------------------


def test_pool_figures_by_hand() -> None:
    pool = rater_report(majority_table(), min_shared=5).pool
    # Agreeing pairs / pairs per overlapped item: 3/6, 0/3, 0/1, 3/6, 1/3 -> 7/19 (item 9 not overlapped).
    assert pool.pairwise_agreement == pytest.approx(7 / 19)
    # Coincidences (each ordered pair weighted 1/(m_u - 1)): o_AB = 3.5, o_AT = 0.5, o_BT = 1.5 each way,
    # so D_o ∝ 11; n_A, n_B, n_T = 7, 5, 4 of n = 16, so D_e ∝ 2(35 + 28 + 20)/15 = 166/15.
    # alpha = 1 - 11·15/166 = 1/166.
    assert pool.alpha == pytest.approx(1 / 166)
    assert pool.alpha_by_dimension == {"helpful": pytest.approx(1 / 166), "harmless": None}
    # ann and bob share items 1-5; no other pair shares five.
    assert [(k.rater_a, k.rater_b, k.shared_items) for k in pool.kappas] == [("ann", "bob", 5)]


def test_alpha_by_hand_ignores_unpairable_items() -> None:
    # Items [A, A], [A, B], [B, B]: o_AB = o_BA = 1, n_A = n_B = 3, n = 6.
    # alpha = 1 - (n - 1)·(o_AB + o_BA) / (2·n_A·n_B) = 1 - 5·2/18 = 4/9.
    items, values = [1, 1, 2, 2, 3, 3], [A, A, A, B, B, B]
    assert krippendorff_alpha_nominal(items, values) == pytest.approx(4 / 9)
    # A fourth item judged once is not pairable and must not move alpha (counting it would give n = 7).
    assert krippendorff_alpha_nominal([*items, 4], [*values, TIE]) == pytest.approx(4 / 9)


@pytest.mark.filterwarnings("ignore::UserWarning")  # sklearn warns where kappa is undefined
def test_cohen_kappa_by_hand() -> None:
    # po = 4/5; marginals a: A .4, B .4, T .2 and b: A .2, B .6, T .2, so pe = .08 + .24 + .04 = .36.
    # kappa = (.8 - .36) / (1 - .36) = .6875.
    a, b = [A, A, B, B, TIE], [A, B, B, B, TIE]
    assert cohen_kappa(a, b) == pytest.approx(0.6875)
    assert cohen_kappa([A, B], [B, A]) == pytest.approx(-1.0)  # po = 0, pe = 1/2
    assert cohen_kappa([A, A, A], [A, A, A]) is None  # pe = 1: undefined (sklearn says nan)
    assert np.isnan(cohen_kappa_score([A, A, A], [A, A, A]))
    rows = [r for i, (x, y) in enumerate(zip(a, b, strict=True)) for r in overlapped(i, ann=x, bob=y)]
    (pair,) = rater_report(make_table(rows), min_shared=5).pool.kappas
    assert dataclasses.astuple(pair) == ("ann", "bob", 5, pytest.approx(0.6875), pytest.approx(0.8))
    assert rater_report(make_table(rows), min_shared=6).pool.kappas == []


def test_pairwise_agreement_by_hand() -> None:
    # Item 1: A, A, B -> 1 of 3 pairs; item 2: B, B -> 1 of 1; item 3 has no pair. 2 of 4.
    assert pairwise_agreement([1, 1, 1, 2, 2, 3], [A, A, B, B, B, TIE]) == 0.5
    assert pairwise_agreement([1, 2], [A, B]) is None


# ---- against krippendorff, sklearn and naive loops on random data ---------------------------------


def random_matrix(seed: int, n_raters: int = 6, n_items: int = 80) -> np.ndarray:
    """Raters × items choices, ~30% missing as nan."""
    rng = np.random.default_rng(seed)
    matrix = rng.choice([A, B, TIE], p=[0.45, 0.4, 0.15], size=(n_raters, n_items)).astype(float)
    matrix[rng.random(matrix.shape) < 0.3] = np.nan
    return matrix


def table_from_matrix(matrix: np.ndarray, dims: np.ndarray, seed: int) -> JudgmentTable:
    rater, item = np.nonzero(~np.isnan(matrix))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rater))  # the report must not rely on row order
    rater, item = rater[order], item[order]
    choice = matrix[rater, item].astype(np.int8)
    n = len(rater)
    return JudgmentTable(
        rater=rater.astype(np.int64),
        item=1000 + 7 * item.astype(np.int64),  # sparse ids
        dimension=dims[item],
        choice=choice,
        chose_left=(rng.random(n) < 0.5) & (choice != TIE),
        longer=rng.integers(-1, 2, n).astype(np.int8),
        seconds=rng.exponential(30.0, n),
        rationale_len=rng.integers(0, 200, n),
        rationale_id=rng.integers(0, 40, n),
        anchor_correct=rng.integers(-1, 2, n).astype(np.int8),
        overlap=np.ones(n, dtype=bool),
        rater_names=[f"r{i}" for i in range(matrix.shape[0])],
        dimension_names=DIMS,
    )


@pytest.mark.parametrize("seed", range(5))
def test_alpha_matches_krippendorff_on_the_reliability_matrix(seed: int) -> None:
    matrix = random_matrix(seed)
    dims = np.random.default_rng(seed + 100).integers(0, 2, size=(matrix.shape[1],))
    pool = rater_report(table_from_matrix(matrix, dims, seed)).pool
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert pool.alpha == pytest.approx(expected, rel=1e-12, abs=1e-12)
    for d, name in enumerate(DIMS):
        sub = matrix[:, dims == d]
        assert pool.alpha_by_dimension[name] == pytest.approx(
            krippendorff.alpha(reliability_data=sub, level_of_measurement="nominal"), rel=1e-12, abs=1e-12
        )


@pytest.mark.filterwarnings("ignore::UserWarning")  # sklearn warns where kappa is undefined
@pytest.mark.parametrize("seed", range(5))
def test_kappas_match_sklearn_for_every_pair(seed: int) -> None:
    matrix = random_matrix(seed, n_raters=7, n_items=50)
    matrix[3, :] = np.where(np.isnan(matrix[3]), np.nan, A)  # constant raters: pe may reach 1
    matrix[4, :] = np.where(np.isnan(matrix[4]), np.nan, A)
    table = table_from_matrix(matrix, np.zeros(matrix.shape[1], dtype=np.int64), seed)
    kappas = {(k.rater_a, k.rater_b): k for k in rater_report(table, min_shared=1).pool.kappas}
    assert len(kappas) == 21  # every pair shares some item at this density
    for a, b in itertools.combinations(range(matrix.shape[0]), 2):
        shared = ~np.isnan(matrix[a]) & ~np.isnan(matrix[b])
        got = kappas[(f"r{a}", f"r{b}")]
        assert got.shared_items == int(shared.sum())
        assert got.agreement == pytest.approx(float(np.mean(matrix[a, shared] == matrix[b, shared])))
        expected = cohen_kappa_score(matrix[a, shared], matrix[b, shared])
        assert got.kappa is None if np.isnan(expected) else got.kappa == pytest.approx(expected, abs=1e-12)
    assert kappas[("r3", "r4")].kappa is None


@pytest.mark.parametrize("seed", range(3))
def test_pairwise_and_majority_agreement_match_naive_loops(seed: int) -> None:
    matrix = random_matrix(seed, n_raters=5, n_items=60)
    report = rater_report(table_from_matrix(matrix, np.zeros(60, dtype=np.int64), seed))
    agree = pairs = 0
    for column in matrix.T:
        for x, y in itertools.combinations(column[~np.isnan(column)], 2):
            pairs, agree = pairs + 1, agree + int(x == y)
    assert report.pool.pairwise_agreement == pytest.approx(agree / pairs)
    for r, rater in enumerate(report.raters):
        hits = judged = 0
        for column in matrix.T:
            others = [v for o, v in enumerate(column) if o != r and not np.isnan(v)]
            ranked = Counter(others).most_common()
            if np.isnan(column[r]) or len(others) < 2 or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
                continue
            judged, hits = judged + 1, hits + int(ranked[0][0] == column[r])
        assert rater.majority_items == judged
        assert rater.majority_agreement == (pytest.approx(hits / judged) if judged else None)


@pytest.mark.parametrize("seed", range(3))
def test_per_rater_figures_match_per_rater_loops(seed: int) -> None:
    table = table_from_matrix(random_matrix(seed, n_raters=5, n_items=60), np.zeros(60, dtype=np.int64), seed)
    for r, got in enumerate(rater_report(table).raters):
        mine = table.rater == r
        decided = mine & (table.choice != TIE)
        known = decided & (table.longer >= 0)
        anchors = mine & (table.anchor_correct >= 0)
        ids = Counter(table.rationale_id[mine].tolist())
        assert got.judgments == mine.sum() and got.anchors_judged == anchors.sum()
        assert got.anchor_agreement == pytest.approx(np.mean(table.anchor_correct[anchors] == 1))
        assert got.position_bias == pytest.approx(np.mean(table.chose_left[decided]))
        assert got.length_bias == pytest.approx(np.mean(table.choice[known] == table.longer[known]))
        assert got.tie_rate == pytest.approx(np.mean(table.choice[mine] == TIE))
        assert got.median_seconds == pytest.approx(np.median(table.seconds[mine]))
        assert got.mean_rationale_chars == pytest.approx(np.mean(table.rationale_len[mine]))
        repeated = [ids[i] > 1 for i in table.rationale_id[mine].tolist()]
        assert got.repeated_rationale_share == pytest.approx(np.mean(repeated))


def test_report_is_strict_json() -> None:
    table = table_from_matrix(random_matrix(0), np.zeros(80, dtype=np.int64), 0)
    data = json.loads(json.dumps(rater_report(table, min_shared=1).to_dict(), allow_nan=False))
    assert set(data) == {"raters", "pool"} and len(data["pool"]["kappas"]) == 15
    assert set(data["raters"][0]) == set(RaterStats.__dataclass_fields__)


# ---- edge cases -----------------------------------------------------------------------------------


def test_no_overlap_gives_no_agreement_figures() -> None:
    rows = [{"rater": name, "item": 1, "choice": A} for name in NAMES]  # same item, but not overlapped
    report = rater_report(make_table(rows), min_shared=1)
    assert report.pool.pairwise_agreement is None and report.pool.alpha is None
    assert report.pool.alpha_by_dimension == {"helpful": None, "harmless": None}
    assert report.pool.kappas == []
    assert all(r.majority_agreement is None and r.majority_items == 0 for r in report.raters)


def test_empty_table_and_single_rater() -> None:
    empty = rater_report(make_table([]))
    assert [r.judgments for r in empty.raters] == [0, 0, 0, 0] and empty.pool.alpha is None
    single = rater_report(make_table(overlapped(1, ann=A) + overlapped(2, ann=B)), min_shared=1)
    assert single.pool.pairwise_agreement is None and single.pool.alpha is None and single.pool.kappas == []
    assert stats(single, "ann").position_bias == 0.0  # two decided judgments, neither on the left


@pytest.mark.parametrize("answer", [TIE, A])
def test_unanimous_constant_answers(answer: int) -> None:
    rows = [r for item in range(3) for r in overlapped(item, ann=answer, bob=answer, cy=answer)]
    report = rater_report(make_table(rows), min_shared=1)
    assert report.pool.pairwise_agreement == 1.0
    assert report.pool.alpha is None  # no variation: expected disagreement is 0
    assert [(k.kappa, k.agreement, k.shared_items) for k in report.pool.kappas] == [(None, 1.0, 3)] * 3
    ann = stats(report, "ann")
    assert (ann.majority_agreement, ann.majority_items, ann.tie_rate) == (1.0, 3, float(answer == TIE))
    if answer == TIE:
        assert ann.position_bias is None and ann.length_bias is None


# ---- validation -----------------------------------------------------------------------------------


def columns() -> dict[str, Any]:
    table = make_table(overlapped(1, ann=A, bob=TIE) + overlapped(2, ann=B))
    return {name: getattr(table, name).copy() for name in table.__dataclass_fields__} | {
        "rater_names": NAMES,
        "dimension_names": DIMS,
    }


@pytest.mark.parametrize(
    ("column", "index", "value"),
    [
        ("choice", 0, 3),
        ("longer", 0, 2),
        ("anchor_correct", 0, -2),
        ("rater", 0, 4),
        ("dimension", 0, -1),
        ("seconds", 0, np.nan),
        ("seconds", 0, np.inf),
        ("seconds", 0, -1.0),
        ("rationale_len", 0, -1),
        ("chose_left", 1, True),  # row 1 is a tie
        ("dimension", 1, 1),  # item 1 would have two dimensions
        ("overlap", 2, False),  # with row 2 moved to item 1 below: item 1 both overlapped and not
    ],
)
def test_bad_values_name_their_column(column: str, index: int, value: Any) -> None:
    data = columns()
    data[column][index] = value
    if column == "overlap":
        data["item"][2] = 1  # item 1 would be both overlapped and not
    with pytest.raises(JudgmentTableError, match=f"'{column}'") as caught:
        JudgmentTable(**data)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, TetherInputError)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("item", np.array([1, 2])),
        ("rater", np.array([0.0, 1.0, 0.0])),
        ("overlap", np.array([1, 1, 1])),
        ("seconds", [1.0] * 3),
    ],
)
def test_bad_shapes_and_dtypes_name_their_column(column: str, value: Any) -> None:
    with pytest.raises(JudgmentTableError, match=f"'{column}'"):
        JudgmentTable(**(columns() | {column: value}))


def test_integer_columns_are_normalized_and_unknown_row_keys_refused() -> None:
    table = JudgmentTable(**(columns() | {"choice": np.array([A, TIE, B], dtype=np.int64)}))
    assert table.choice.dtype == np.int8 and table.choice.tolist() == [A, TIE, B]
    with pytest.raises(JudgmentTableError, match="choise"):
        make_table([{"rater": "ann", "item": 1, "choise": A}])
    with pytest.raises(JudgmentTableError, match="rater_names"):
        JudgmentTable(**(columns() | {"rater_names": ["ann", "ann", "cy", "dee"]}))
    with pytest.raises(ValueError, match="min_shared"):
        rater_report(table, min_shared=0)
