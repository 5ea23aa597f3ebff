"""The whole realistic-size benchmark against TRL 1.16 in one command: RM, RLOO, GRPO and PPO, CPU.

    .venv/bin/python bench/realistic.py OUT_DIR --threads 2

Runs bench/rm_vs_trl_realistic.py, then bench/rl_vs_trl_realistic.py (each measured run in its own
subprocess), prints their tables and a summary against issue 15's targets, and writes
OUT_DIR/rm.json, OUT_DIR/rl.json, OUT_DIR/summary.json and OUT_DIR/report.md. Models and
checkpoints go to a temporary directory that is removed at the end. About 20 minutes on 2 cores
with the defaults; run it alone on the machine, as every figure is a wall-clock time.
Options other than --threads and --cache are not passed on: run the two scripts directly to change
step counts or sizes. --smoke runs every path with two steps and short texts, to check the pipeline.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rl_vs_trl_realistic
import rm_vs_trl_realistic
from realistic_harness import markdown_table, write_result
from realistic_model import DEFAULT_CACHE

SMOKE_RM = ["--train-pairs", "32", "--test-pairs", "16", "--prompt-tokens", "48"]
SMOKE_RL = ["--steps", "1", "--ppo-steps", "1", "--prompt-tokens", "48", "--max-new-tokens", "16"]
"""--smoke: every path runs, in a few minutes; the figures mean nothing."""


def summary(rm: dict[str, Any], rl: dict[str, Any]) -> tuple[str, dict[str, float]]:
    """The figures the issue asks for, each with its target."""
    rm_runs, rl_runs = rm["runs"], rl["runs"]
    figures = {
        "rm_pairs_per_second_tether_over_trl": rm["tether_over_trl_pairs_per_second"],
        "rm_heldout_accuracy_tether": rm_runs["tether"]["heldout_accuracy"],
        "rm_heldout_accuracy_trl": rm_runs["trl"]["heldout_accuracy"],
        "rloo_samples_per_second_tether_over_trl": rl["ratios"]["tether_rloo_over_trl_rloo"],
        "grpo_samples_per_second_tether_rloo_over_trl_grpo": rl["ratios"]["tether_rloo_over_trl_grpo"],
        "ppo_step_over_parts": rl["ratios"]["ppo_step_over_parts"],
    }
    rows = [
        ["RM training pairs/s, Tether / TRL", figures["rm_pairs_per_second_tether_over_trl"], ">= 1.5"],
        [
            "RM held-out accuracy, Tether (TRL)",
            f"{figures['rm_heldout_accuracy_tether']:.3f} ({figures['rm_heldout_accuracy_trl']:.3f})",
            ">= TRL's",
        ],
        ["RLOO samples/s, Tether / TRL RLOO", figures["rloo_samples_per_second_tether_over_trl"], ">= 1.5"],
        [
            "GRPO samples/s, Tether RLOO / TRL GRPO",
            figures["grpo_samples_per_second_tether_rloo_over_trl_grpo"],
            ">= 1.5",
        ],
        ["PPO step / sum of its parts", figures["ppo_step_over_parts"], "<= 1.3"],
    ]
    peaks = {name: run["peak_rss_mb"] for name, run in {**rm_runs, **rl_runs}.items()}
    rows += [
        [f"peak RSS, MiB: {'rm-' if name in rm_runs else ''}{name}", mb, "-"] for name, mb in peaks.items()
    ]
    return markdown_table(["figure", "measured", "target"], rows), figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("out", type=Path, help="Directory for the JSON files and report.md.")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads of every measured run.")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="Tokenizer cache directory.")
    parser.add_argument(
        "--smoke", action="store_true", help="Check the pipeline in minutes: two steps per run, short texts."
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    common = ["--threads", str(args.threads), "--cache", str(args.cache)]
    rm_args, rl_args = (SMOKE_RM, SMOKE_RL) if args.smoke else ([], [])
    with tempfile.TemporaryDirectory(prefix="tether-realistic-") as tmp:
        rm = rm_vs_trl_realistic.main(
            [*common, *rm_args, "--work", f"{tmp}/rm", "--out", str(args.out / "rm.json")]
        )
        rl = rl_vs_trl_realistic.main(
            [*common, *rl_args, "--work", f"{tmp}/rl", "--out", str(args.out / "rl.json")]
        )
    table, figures = summary(rm, rl)
    minutes = (time.perf_counter() - started) / 60
    text = (
        f"{rm_vs_trl_realistic.report(rm)}\n{rl_vs_trl_realistic.report(rl)}\n"
        f"Summary ({args.threads} threads, {minutes:.1f} min in all)\n\n{table}\n"
    )
    print(f"\nSummary ({args.threads} threads, {minutes:.1f} min in all)\n\n{table}")
    (args.out / "report.md").write_text(text, encoding="utf-8")
    write_result(args.out / "summary.json", {**figures, "minutes": minutes, "threads": args.threads})


if __name__ == "__main__":
    main()
