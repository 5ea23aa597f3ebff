"""Time `rater_report` on a synthetic pool: a million judgments from 200 raters.

    .venv/bin/python bench/rater_report.py                      # 1,000,000 judgments
    .venv/bin/python bench/rater_report.py --judgments 100000   # quicker

The pool is shaped like a live one: ~60% of live items overlapped with 3 raters each and the rest
judged once, 4 dimensions, 5% of judgments on clear-cut anchors, some raters with a left-position
or a longer-answer habit, a few copy-pasting their rationales. Target: <= 10 s on 2 cores.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from tether.labeling.judgment_table import JudgmentTable
from tether.labeling.metrics import RaterReport, rater_report


@dataclass(frozen=True)
class PoolShape:
    """How the synthetic pool is drawn."""

    judgments: int = 1_000_000
    """Total judgments, anchors included."""
    raters: int = 200
    """Raters in the pool."""
    dimensions: int = 4
    """Spec dimensions; each item belongs to one."""
    anchor_share: float = 0.05
    """Share of judgments on clear-cut anchors."""
    overlap_share: float = 0.6
    """Share of live items judged by 3 raters; the rest are judged once."""
    seed: int = 0
    """Random seed."""


def three_distinct_raters(rng: np.random.Generator, n_items: int, n_raters: int) -> np.ndarray:
    """(n_items, 3) rater indices, distinct within each row."""
    first = rng.integers(0, n_raters, n_items)
    step1 = rng.integers(1, n_raters, n_items)
    step2 = rng.integers(1, n_raters - 1, n_items)
    step2 += step2 >= step1  # skip step1, so the three offsets 0, step1, step2 differ
    return np.stack([first, first + step1, first + step2], axis=1) % n_raters


def live_assignments(rng: np.random.Generator, shape: PoolShape, n_live: int) -> tuple[np.ndarray, ...]:
    """(rater, item, overlap) for the live judgments: overlapped items x3, single items x1."""
    # 3·o + (1 − o) judgments per item on average.
    n_items = round(n_live / (3 * shape.overlap_share + 1 - shape.overlap_share))
    n_overlapped = round(n_items * shape.overlap_share)
    n_single = n_live - 3 * n_overlapped
    triple = three_distinct_raters(rng, n_overlapped, shape.raters)  # (n_overlapped, 3)
    rater = np.concatenate([triple.ravel(), rng.integers(0, shape.raters, n_single)])
    item = np.concatenate([np.repeat(np.arange(n_overlapped), 3), n_overlapped + np.arange(n_single)])
    overlap = np.arange(len(rater)) < 3 * n_overlapped
    return rater, item, overlap


def anchor_assignments(rng: np.random.Generator, shape: PoolShape, n_anchor: int) -> tuple[np.ndarray, ...]:
    """(rater, item) for anchor judgments: distinct (rater, anchor) pairs over a bank of anchors."""
    bank = max(1, 2 * -(-n_anchor // shape.raters))  # each rater sees about half the bank
    cells = rng.choice(bank * shape.raters, size=n_anchor, replace=False)
    return cells % shape.raters, cells // shape.raters


def synthesize(shape: PoolShape) -> dict[str, np.ndarray]:
    """The table's columns, with choices drawn from per-rater accuracy and habits."""
    rng = np.random.default_rng(shape.seed)
    n_anchor = round(shape.judgments * shape.anchor_share)
    live_rater, live_item, live_overlap = live_assignments(rng, shape, shape.judgments - n_anchor)
    anchor_rater, anchor_item = anchor_assignments(rng, shape, n_anchor)
    rater = np.concatenate([live_rater, anchor_rater])
    item = np.concatenate([live_item, live_item.max(initial=-1) + 1 + anchor_item])
    n, n_items = len(rater), int(item.max()) + 1
    overlap = np.concatenate([live_overlap, np.zeros(n_anchor, dtype=bool)])

    # (1) items: true side, displayed order, length gap, dimension — all properties of the item
    truth, a_on_left = rng.integers(0, 2, n_items)[item], (rng.random(n_items) < 0.5)[item]
    longer = np.where(rng.random(n_items) < 0.5, -1, rng.integers(0, 2, n_items))[item]
    dimension = rng.integers(0, shape.dimensions, n_items)[item]
    # (2) raters: accuracy, and a few with a left-position or a longer-answer habit
    accuracy = rng.uniform(0.65, 0.95, shape.raters)[rater]
    left_habit = np.where(rng.random(shape.raters) < 0.1, 0.4, 0.0)[rater]
    length_habit = np.where(rng.random(shape.raters) < 0.1, 0.4, 0.0)[rater]
    # (3) choices: right or wrong, then habits override, then ties
    choice = np.where(rng.random(n) < accuracy, truth, 1 - truth)
    left_side = np.where(a_on_left, 0, 1)
    choice = np.where(rng.random(n) < left_habit, left_side, choice)
    choice = np.where((longer >= 0) & (rng.random(n) < length_habit), longer, choice)
    choice = np.where(rng.random(n) < 0.07, 2, choice)
    is_anchor = np.arange(n) >= len(live_rater)
    # (4) effort: time, rationale length, and copy-paste rationales for 5% of raters
    copier = (rng.random(shape.raters) < 0.05)[rater]
    rationale_id = np.where(copier, rater * 10 + rng.integers(0, 3, n), 10_000 + np.arange(n))
    columns = {
        "rater": rater,
        "item": item * 7 + 3,  # sparse ids, like a database's
        "dimension": dimension,
        "choice": choice.astype(np.int8),
        "chose_left": (choice == left_side) & (choice != 2),
        "longer": longer.astype(np.int8),
        "seconds": rng.lognormal(3.5, 0.6, n),
        "rationale_len": rng.poisson(80, n),
        "rationale_id": rationale_id,
        "anchor_correct": np.where(is_anchor, (choice == truth).astype(np.int8), -1).astype(np.int8),
        "overlap": overlap,
    }
    order = rng.permutation(n)  # arrival order, not generation order
    return {name: column[order] for name, column in columns.items()}


def summarize(report: RaterReport) -> str:
    pool = report.pool
    kappas = np.array([k.kappa for k in pool.kappas if k.kappa is not None])
    by_dimension = ", ".join(f"{d}={a:.3f}" for d, a in pool.alpha_by_dimension.items() if a is not None)
    left = sorted(report.raters, key=lambda r: -(r.position_bias or 0))[:3]
    longer = sorted(report.raters, key=lambda r: -(r.length_bias or 0))[:3]
    copiers = sum(r.repeated_rationale_share > 0.5 for r in report.raters)
    lines = [
        f"raters: {len(report.raters)}; pairwise agreement {pool.pairwise_agreement:.3f}",
        f"alpha: {pool.alpha:.3f}",
        f"alpha by dimension: {by_dimension}",
        f"kappas: {len(pool.kappas)} pairs; median {np.median(kappas):.3f}"
        if len(kappas)
        else "kappas: none",
        "most left-leaning: " + ", ".join(f"{r.name} {r.position_bias:.2f}" for r in left),
        "most length-leaning: " + ", ".join(f"{r.name} {r.length_bias:.2f}" for r in longer),
        f"raters copy-pasting most rationales: {copiers}",
        f"raters flagged on peer agreement: {sum(bool(r.peer_flags) for r in report.raters)}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=PoolShape.judgments, help="total judgments")
    parser.add_argument("--raters", type=int, default=PoolShape.raters, help="raters in the pool")
    parser.add_argument("--seed", type=int, default=PoolShape.seed, help="random seed")
    args = parser.parse_args()
    shape = PoolShape(judgments=args.judgments, raters=args.raters, seed=args.seed)
    columns = synthesize(shape)

    start = time.perf_counter()
    names = [f"rater{i:03d}" for i in range(shape.raters)]
    dimensions = [f"dim{i}" for i in range(shape.dimensions)]
    table = JudgmentTable(**columns, rater_names=names, dimension_names=dimensions)
    built = time.perf_counter() - start

    start = time.perf_counter()
    report = rater_report(table)
    reported = time.perf_counter() - start

    print(f"judgments: {len(table.rater):,} ({int(table.overlap.sum()):,} overlapped)")
    print(f"table construction (validation): {built:.3f} s")
    print(f"rater_report: {reported:.3f} s")
    print(summarize(report))


if __name__ == "__main__":
    main()
