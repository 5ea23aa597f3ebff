"""Two reward models on the same gold-labeled pairs, paired: accuracy and standardized margin per dimension.

    .venv/bin/python bench/rm_pair_compare.py models/rm-clean models/rm-all-same --data exports/gold

Accuracy only counts signs, and a Bradley–Terry model keeps the sign of a preference that a
minority of its labels contradict; what those labels cost is confidence. So beside accuracy this
prints the standardized margin: the mean of (r(gold-better) - r(gold-worse)) / sd(r), where sd is
the model's reward spread over every response it scored (reward scales differ between models).
Intervals are a paired bootstrap over pairs (both models on the same resampled pairs), so the
difference's interval is what says "measurably lower".
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tether.labeling.export_files import load_rows
from tether.reward.scoring import load_reward_model

N_BOOT = 2000


def margins(model_dir: Path, prompts: list[str], better: list[str], worse: list[str]) -> np.ndarray:
    model = load_reward_model(model_dir)
    rb = model.score(prompts, better)  # (N,)
    rw = model.score(prompts, worse)  # (N,)
    spread = float(np.concatenate([rb, rw]).std())
    return (rb - rw) / spread


def interval(values: np.ndarray, idx: np.ndarray) -> tuple[float, float, float]:
    draws = values[idx].mean(axis=1)  # (N_BOOT,)
    return float(values.mean()), float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="Export whose test split holds gold pairs.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = [r for r in load_rows(args.data, "test") if not r.tie]
    prompts = [r.prompt for r in rows]
    ma = margins(args.a, prompts, [r.chosen for r in rows], [r.rejected for r in rows])
    mb = margins(args.b, prompts, [r.chosen for r in rows], [r.rejected for r in rows])
    dims = np.array([r.dimension for r in rows])
    rng = np.random.default_rng(args.seed)
    print(f"A = {args.a}, B = {args.b}, {len(rows)} gold pairs from {args.data}")
    print(f"{'dimension':10s} {'n':>5s}  {'acc A':>6s} {'acc B':>6s} {'B-A acc [95% CI]':>24s}  "
          f"{'margin A':>8s} {'margin B':>8s} {'B-A margin [95% CI]':>26s}")  # fmt: skip
    for dim in ["all", *sorted(set(dims))]:
        keep = np.ones(len(rows), bool) if dim == "all" else dims == dim
        a, b = ma[keep], mb[keep]
        idx = rng.integers(0, len(a), size=(N_BOOT, len(a)))  # (N_BOOT, n) shared by both models
        acc_d = interval((b > 0).astype(float) - (a > 0).astype(float), idx)
        mar_d = interval(b - a, idx)
        print(
            f"{dim:10s} {len(a):5d}  {(a > 0).mean():6.3f} {(b > 0).mean():6.3f} "
            f"{acc_d[0]:+7.3f} [{acc_d[1]:+.3f}, {acc_d[2]:+.3f}]  "
            f"{a.mean():8.3f} {b.mean():8.3f} {mar_d[0]:+8.3f} [{mar_d[1]:+.3f}, {mar_d[2]:+.3f}]"
        )


if __name__ == "__main__":
    main()
