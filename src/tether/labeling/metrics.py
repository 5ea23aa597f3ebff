"""Rater agreement and bias figures for `tether raters status`, vectorized over a columnar judgment table.

No Python loop touches single judgments (loops run over raters, dimensions or rater pairs), so a
million judgments report in seconds: `python bench/rater_report.py`.

Conventions used throughout:
- A repeated (rater, item) judgment counts once, the first row winning: a retried submission must
  not double a rater's weight.
- Agreement figures (majority, pairwise, alpha, kappa) use overlapped items only.
- A figure with nothing to measure is None, never nan, so the report is strict JSON. Kappa is None
  when expected agreement is 1 (both raters gave one same answer throughout), where sklearn's
  `cohen_kappa_score` returns nan; alpha is None without pairable values or without variation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import krippendorff
import numpy as np
import numpy.typing as npt

from tether.labeling.judgment_table import COLUMNS, JudgmentTable
from tether.labeling.peer import PeerFlagRule, peer_agreement, peer_flags, pool_medians

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

N_CHOICES = 3
"""Canonical choices: 0 = response A, 1 = response B, 2 = tie."""
TIE = 2


# column -> (accepted dtype kinds, dtype it is stored as, allowed values or None)
@dataclass(frozen=True)
class RaterStats:
    """One rater's figures; None where the rater has nothing to measure it on."""

    name: str
    judgments: int
    anchor_agreement: float | None
    anchors_judged: int
    calibration_agreement: float | None
    """Agreement with the experts in calibration rounds only (made with the rubric fresh in mind)."""
    calibration_anchors: int
    hidden_anchor_agreement: float | None
    """Agreement with the experts on hidden anchors only, met among live work."""
    hidden_anchors_judged: int
    majority_agreement: float | None
    majority_items: int
    peer_agreement: dict[str, float | None]
    """Per dimension: agreement with the majority of the other raters on overlapped live tasks."""
    peer_items: dict[str, int]
    """Per dimension: the tasks peer_agreement is measured on (>= 2 other votes, unique majority)."""
    peer_flags: list[str]
    """Dimensions where peer agreement is far below the pool (`PeerFlagRule`): review, not exclusion."""
    position_bias: float | None
    length_bias: float | None
    tie_rate: float
    median_seconds: float | None
    mean_rationale_chars: float | None
    repeated_rationale_share: float


@dataclass(frozen=True)
class PairKappa:
    """Cohen's kappa of two raters over the overlapped items both judged; None if undefined."""

    rater_a: str
    rater_b: str
    shared_items: int
    kappa: float | None
    agreement: float


@dataclass(frozen=True)
class PoolStats:
    """Agreement across the whole rater pool, on overlapped items."""

    pairwise_agreement: float | None
    alpha: float | None
    alpha_by_dimension: dict[str, float | None]
    kappas: list[PairKappa]
    peer_median: dict[str, float | None]
    """Per dimension: the median peer agreement the flags compare against (None: too few raters)."""


@dataclass(frozen=True)
class RaterReport:
    """What `tether raters status` shows: per-rater figures in rater_names order, then the pool."""

    raters: list[RaterStats]
    pool: PoolStats

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: only str, int, float, None, lists and dicts."""
        return dataclasses.asdict(self)


# ---- building blocks: pure functions over columns -------------------------------------------------


def choice_counts(items: npt.ArrayLike, values: npt.ArrayLike, n_values: int = N_CHOICES) -> IntArray:
    """(I, V) matrix: how many judgments gave each value to each distinct item (items in sorted order)."""
    _, dense = np.unique(np.asarray(items), return_inverse=True)
    return _counts(dense, np.asarray(values, dtype=np.int64), n_values)


def _counts(dense_items: IntArray, values: IntArray, n_values: int) -> IntArray:
    n_items = int(dense_items.max()) + 1 if len(dense_items) else 0
    flat = np.bincount(dense_items * n_values + values, minlength=n_items * n_values)
    return flat.reshape(n_items, n_values)


def alpha_from_counts(counts: npt.ArrayLike) -> float | None:
    """Krippendorff's alpha, nominal, from an (items, values) count matrix.

    Items with fewer than two values are dropped first: they are not pairable and krippendorff
    would count them in no coincidence anyway, but dropping them also skips the library's check.
    """
    matrix = np.asarray(counts)
    pairable = matrix[matrix.sum(axis=1) >= 2]
    if len(pairable) == 0 or np.count_nonzero(pairable.sum(axis=0)) < 2:
        return None  # no pairs, or one value throughout: expected disagreement is 0
    # REFERENCES.md: krippendorff defaults to the interval level; A/B/tie is nominal.
    return float(krippendorff.alpha(value_counts=pairable, level_of_measurement="nominal"))


def krippendorff_alpha_nominal(items: npt.ArrayLike, values: npt.ArrayLike) -> float | None:
    """Krippendorff's alpha, nominal, of judgments given as parallel item and value (0, 1, 2) columns."""
    return alpha_from_counts(choice_counts(items, values))


def _agreement_from_counts(counts: IntArray) -> float | None:
    n = counts.sum(axis=1)
    pairs = int((n * (n - 1)).sum()) // 2
    agreeing = int((counts * (counts - 1)).sum()) // 2
    return agreeing / pairs if pairs else None


def pairwise_agreement(items: npt.ArrayLike, values: npt.ArrayLike) -> float | None:
    """Share of identical values over all (item, pair of distinct judgments of it); None without pairs."""
    return _agreement_from_counts(choice_counts(items, values))


def others_majority(
    items: npt.ArrayLike, values: npt.ArrayLike, n_values: int = N_CHOICES
) -> tuple[BoolArray, BoolArray]:
    """Per judgment: (eligible, agrees) against the majority of the other judgments of its item.

    Eligible when the item has >= 2 other judgments whose plurality has a unique winner;
    agrees when eligible and this judgment's value is that winner.
    """
    value = np.asarray(values, dtype=np.int64)
    _, dense = np.unique(np.asarray(items), return_inverse=True)
    others = _counts(dense, value, n_values)[dense]  # (N, V)
    others[np.arange(len(value)), value] -= 1
    top = others.max(axis=1, initial=0)
    unique_top = (others == top[:, None]).sum(axis=1) == 1
    eligible = (others.sum(axis=1) >= 2) & unique_top
    return eligible, eligible & (others.argmax(axis=1) == value)


def _within_group_pairs(sorted_groups: IntArray) -> tuple[IntArray, IntArray]:
    """Row positions (first, second), first < second, of every pair of rows sharing a group."""
    n = len(sorted_groups)
    starts = np.r_[True, sorted_groups[1:] != sorted_groups[:-1]] if n else np.zeros(0, dtype=bool)
    run = np.cumsum(starts) - 1
    run_end = np.cumsum(np.bincount(run))[run]  # exclusive end of each row's run
    partners = run_end - np.arange(n) - 1
    first = np.repeat(np.arange(n), partners)
    offset = np.arange(len(first)) - np.repeat(np.cumsum(partners) - partners, partners)
    return first, first + 1 + offset


def pair_confusions(
    items: npt.ArrayLike, raters: npt.ArrayLike, values: npt.ArrayLike, n_values: int = N_CHOICES
) -> tuple[IntArray, IntArray]:
    """Confusion matrices of every rater pair over the items both judged.

    Expects each (rater, item) at most once. Returns pairs (P, 2) with rater_a < rater_b, in sorted
    order, and confusions (P, V, V) where [p, x, y] counts items rater_a valued x and rater_b y.
    """
    item, rater = np.asarray(items), np.asarray(raters, dtype=np.int64)
    value = np.asarray(values, dtype=np.int64)
    order = np.argsort(item, kind="stable")
    first, second = _within_group_pairs(item[order])
    first, second = order[first], order[second]
    swap = rater[first] > rater[second]
    a, b = np.where(swap, second, first), np.where(swap, first, second)
    n_raters = int(rater.max()) + 1 if len(rater) else 1
    keys, pair = np.unique(rater[a] * n_raters + rater[b], return_inverse=True)
    cells = pair * n_values * n_values + value[a] * n_values + value[b]
    flat = np.bincount(cells, minlength=len(keys) * n_values * n_values)
    pairs = np.stack([keys // n_raters, keys % n_raters], axis=1)
    return pairs, flat.reshape(len(keys), n_values, n_values)


def kappa_from_confusions(confusions: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(kappa, observed agreement) per (P, V, V) confusion matrix; kappa is nan where pe == 1.

    kappa = (po - pe) / (1 - pe), kept in integers as (n·trace − Σ r·c) / (n² − Σ r·c) so that
    pe == 1 is detected exactly rather than as 1 − 1e-16.
    """
    conf = np.asarray(confusions, dtype=np.int64)
    n = conf.sum(axis=(1, 2))
    trace = np.trace(conf, axis1=1, axis2=2)
    chance = (conf.sum(axis=2) * conf.sum(axis=1)).sum(axis=1)  # Σ_v rows_v · cols_v
    numerator, denominator = n * trace - chance, n * n - chance
    kappa = np.full(len(conf), np.nan)
    np.divide(numerator, denominator, out=kappa, where=denominator != 0)
    agreement = np.full(len(conf), np.nan)
    np.divide(trace, n, out=agreement, where=n != 0)
    return kappa, agreement


def cohen_kappa(a: npt.ArrayLike, b: npt.ArrayLike, n_values: int = N_CHOICES) -> float | None:
    """Cohen's kappa of two aligned label arrays (values 0..n_values-1); None where pe == 1 or empty."""
    x, y = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if x.shape != y.shape:
        raise ValueError(f"cohen_kappa: label arrays differ in shape, {x.shape} vs {y.shape}")
    confusion = np.bincount(x * n_values + y, minlength=n_values * n_values).reshape(1, n_values, n_values)
    kappa = float(kappa_from_confusions(confusion)[0][0])
    return None if np.isnan(kappa) else kappa


def group_mean(
    values: npt.ArrayLike, groups: IntArray, mask: BoolArray, n_groups: int
) -> tuple[FloatArray, IntArray]:
    """Per group: (mean of values over masked rows, nan where none; number of masked rows)."""
    members = groups[mask]
    count = np.bincount(members, minlength=n_groups)
    total = np.bincount(members, weights=np.asarray(values, dtype=np.float64)[mask], minlength=n_groups)
    mean = np.full(n_groups, np.nan)
    np.divide(total, count, out=mean, where=count > 0)
    return mean, count


def group_median(values: FloatArray, groups: IntArray, n_groups: int) -> FloatArray:
    """Per group median of values; nan for empty groups."""
    ordered = values[np.lexsort((values, groups))]
    size = np.bincount(groups, minlength=n_groups)
    start = np.cumsum(size) - size
    has = size > 0
    median = np.full(n_groups, np.nan)
    low, high = (start + (size - 1) // 2)[has], (start + size // 2)[has]
    median[has] = (ordered[low] + ordered[high]) / 2
    return median


def repeated_within_group(groups: IntArray, keys: IntArray) -> BoolArray:
    """Per row: whether its key occurs more than once among its group's rows."""
    order = np.lexsort((keys, groups))
    g, k = groups[order], keys[order]
    new = np.r_[True, (g[1:] != g[:-1]) | (k[1:] != k[:-1])] if len(g) else np.zeros(0, dtype=bool)
    run = np.cumsum(new) - 1
    repeated = np.empty(len(g), dtype=bool)
    repeated[order] = np.bincount(run)[run] > 1
    return repeated


# ---- the report ----------------------------------------------------------------------------------


def first_judgments(table: JudgmentTable) -> IntArray:
    """Row indices, in table order, of the first judgment of each (rater, item)."""
    _, dense = np.unique(table.item, return_inverse=True)
    _, first = np.unique(dense * len(table.rater_names) + table.rater, return_index=True)
    return np.sort(first)


def _none(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


@dataclass(frozen=True)
class _Peers:
    """(R, D) peer agreement, task counts and flags, with the (D,) pool medians."""

    agreement: FloatArray
    items: IntArray
    flags: BoolArray
    medians: FloatArray


def _peers(
    t: dict[str, npt.NDArray[Any]],
    eligible: BoolArray,
    agrees: BoolArray,
    n: int,
    n_dims: int,
    rule: PeerFlagRule,
) -> _Peers:
    ov = t["overlap"]
    agreement, items = peer_agreement(
        t["rater"][ov], t["dimension"][ov], eligible, agrees, n_raters=n, n_dimensions=n_dims
    )
    medians = pool_medians(agreement, items, rule)
    return _Peers(agreement, items, peer_flags(agreement, items, medians, rule), medians)


def _rater_stats(
    t: dict[str, npt.NDArray[Any]], names: list[str], dims: list[str], rule: PeerFlagRule
) -> tuple[list[RaterStats], _Peers]:
    n, r, choice = len(names), t["rater"], t["choice"]
    everything, decided = np.ones(len(r), dtype=bool), choice != TIE
    right, graded = t["anchor_correct"] == 1, t["anchor_correct"] >= 0
    anchor, anchors = group_mean(right, r, graded, n)
    calibration, calibrations = group_mean(right, r, graded & t["practice"], n)
    hidden, hiddens = group_mean(right, r, graded & ~t["practice"], n)
    ov = t["overlap"]
    eligible, agrees = others_majority(t["item"][ov], choice[ov])
    majority, majority_items = group_mean(agrees, r[ov], eligible, n)
    peers = _peers(t, eligible, agrees, n, len(dims), rule)
    habitual = decided & ~t["practice"]
    position, _ = group_mean(t["chose_left"], r, habitual, n)
    length, _ = group_mean(choice == t["longer"], r, habitual & (t["longer"] >= 0), n)
    ties, judgments = group_mean(choice == TIE, r, everything, n)
    chars, _ = group_mean(t["rationale_len"], r, everything, n)
    repeated, _ = group_mean(repeated_within_group(r, t["rationale_id"]), r, everything, n)
    median = group_median(t["seconds"], r, n)
    stats = [
        RaterStats(
            name=names[i],
            judgments=int(judgments[i]),
            anchor_agreement=_none(anchor[i]),
            anchors_judged=int(anchors[i]),
            calibration_agreement=_none(calibration[i]),
            calibration_anchors=int(calibrations[i]),
            hidden_anchor_agreement=_none(hidden[i]),
            hidden_anchors_judged=int(hiddens[i]),
            majority_agreement=_none(majority[i]),
            majority_items=int(majority_items[i]),
            peer_agreement={d: _none(peers.agreement[i, j]) for j, d in enumerate(dims)},
            peer_items={d: int(peers.items[i, j]) for j, d in enumerate(dims)},
            peer_flags=[d for j, d in enumerate(dims) if peers.flags[i, j]],
            position_bias=_none(position[i]),
            length_bias=_none(length[i]),
            tie_rate=float(np.nan_to_num(ties[i])),  # 0.0 for a rater with no judgments
            median_seconds=_none(median[i]),
            mean_rationale_chars=_none(chars[i]),
            repeated_rationale_share=float(np.nan_to_num(repeated[i])),
        )
        for i in range(n)
    ]
    return stats, peers


def _pool_stats(
    t: dict[str, npt.NDArray[Any]], table: JudgmentTable, min_shared: int, peer_median: FloatArray
) -> PoolStats:
    ov = t["overlap"]
    item, choice, dimension = t["item"][ov], t["choice"][ov].astype(np.int64), t["dimension"][ov]
    _, dense = np.unique(item, return_inverse=True)
    counts = _counts(dense, choice, N_CHOICES)  # (I, 3)
    item_dimension = np.zeros(len(counts), dtype=np.int64)
    item_dimension[dense] = dimension  # one dimension per item, checked by JudgmentTable
    by_dimension = {
        name: alpha_from_counts(counts[item_dimension == d]) for d, name in enumerate(table.dimension_names)
    }
    pairs, confusions = pair_confusions(dense, t["rater"][ov], choice)
    shared = confusions.sum(axis=(1, 2))
    keep = shared >= min_shared
    kappa, agreement = kappa_from_confusions(confusions[keep])
    names = table.rater_names
    columns = (pairs[keep].tolist(), shared[keep].tolist(), kappa.tolist(), agreement.tolist())
    kappas = [PairKappa(names[a], names[b], s, _none(k), g) for (a, b), s, k, g in zip(*columns, strict=True)]
    medians = {name: _none(peer_median[d]) for d, name in enumerate(table.dimension_names)}
    return PoolStats(_agreement_from_counts(counts), alpha_from_counts(counts), by_dimension, kappas, medians)


def rater_report(
    table: JudgmentTable, *, min_shared: int = 20, peer_rule: PeerFlagRule | None = None
) -> RaterReport:
    """Per-rater figures and pool agreement; kappas for rater pairs sharing >= min_shared overlapped
    items; peer-agreement flags under `peer_rule` (default `PeerFlagRule()`)."""
    if min_shared < 1:
        raise ValueError(f"rater_report: min_shared must be >= 1, got {min_shared}")
    rows = first_judgments(table)
    # Without duplicates (the normal case) the columns are used as they are, without copies.
    pick: Any = slice(None) if len(rows) == len(table.rater) else rows
    t = {name: getattr(table, name)[pick] for name in COLUMNS}
    rule = PeerFlagRule() if peer_rule is None else peer_rule
    raters, peers = _rater_stats(t, table.rater_names, table.dimension_names, rule)
    return RaterReport(raters=raters, pool=_pool_stats(t, table, min_shared, peers.medians))


def wilson_interval(k: int, n: int) -> tuple[float, float]:
    """The Wilson score 95% interval of a share k/n (scipy's; it stays inside [0, 1] at small n).

    >>> [round(x, 3) for x in wilson_interval(117, 167)]
    [0.627, 0.765]
    """
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)
