"""Print RL runs' curves side by side: gold utility, RM score, KL against budget, length, alerts.

    .venv/bin/python bench/rl_curves.py .tether/rl/rl-*/ --every 25

Reads each run directory's metrics.jsonl and alerts.jsonl (written by `tether rl run`).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

KEYS = (
    ("gold/utility", "gold"),
    ("objective/rm_score", "rm"),
    ("objective/kl", "kl"),
    ("objective/kl_coef", "beta"),
    ("gen/length_mean", "len"),
    ("gen/hedge_rate", "hedge"),
    ("gen/list_rate", "list"),
)
DIMENSIONS = ("accuracy", "safety", "honesty", "concision")


def rows(path: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def show(run: Path, every: int) -> None:
    metrics = rows(run / "metrics.jsonl")
    print(f"== {run}  ({len(metrics)} steps)")
    print("  step " + " ".join(f"{short:>7s}" for _, short in KEYS))
    picked = [m for m in metrics if int(m["step"]) % every == 0] + [metrics[-1]]
    for m in picked:
        print(f"  {int(m['step']):4d} " + " ".join(f"{m.get(key, float('nan')):7.3f}" for key, _ in KEYS))
    first, last = metrics[0], metrics[-1]
    dims = ", ".join(
        f"{d} {first.get(f'gold/{d}', float('nan')):.3f}->{last.get(f'gold/{d}', float('nan')):.3f}"
        for d in DIMENSIONS
    )
    print(f"  gold by dimension, first -> last step: {dims}")
    alerts_file = run / "alerts.jsonl"
    alerts = rows(alerts_file) if alerts_file.exists() else []
    counts = Counter(f"{a['monitor']}:{a['severity']}" for a in alerts)
    print(f"  alerts: {dict(counts) or 'none'}")
    for a in alerts[:4]:
        print(f"    step {a['step']}: {a['message'][:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--every", type=int, default=25)
    args = parser.parse_args()
    for run in args.runs:
        show(run, args.every)


if __name__ == "__main__":
    main()
