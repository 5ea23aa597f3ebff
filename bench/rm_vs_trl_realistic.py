"""Reward-model training at a realistic size: Tether against TRL 1.16's RewardTrainer, CPU.

    .venv/bin/python bench/rm_vs_trl_realistic.py --threads 2 --out /tmp/rm-realistic.json

The backbone is `bench/realistic_model.py`'s random-init Llama (41.7M parameters, 32k byte-level
BPE trained offline on the Python standard library). bench/rm_vs_trl.py's rules of equal footing
hold (same pairs, base, batch, epochs, lr with linear warmup/decay, grad clip 1.0, margin,
centering 0.01, max_length; dropout off; TRL's gradient_checkpointing and bf16 defaults off; token
ids checked equal), and more:
- each trainer runs in its own fresh subprocess (`realistic_harness.run_isolated`) with the same
  torch thread count; its peak memory is that process's RSS high-water mark at the end of its last
  optimizer step;
- pairs/s is timed from the end of the first (warm-up) optimizer step to the end of the last, so
  it is the training loop alone; every batch is full (train pairs are a multiple of the batch);
- Tether reads its metrics back every step (`log_every=1`) so that its clock ticks per step as
  TRL's callback does; on CPU that read costs nothing;
- the process wall time (reported, not compared) also holds loading, tokenizing, saving and
  scoring the held-out split, which Tether's `train_checkpoint` does once more for its metrics;
- Tether batches each pair as one shared-prefix row, its default (`tether.reward.shared_prefix`: the
  prompt is read once, and a check on the first pairs confirms the rewards equal the plain batch's);
  a third run, `tether-plain`, turns that off, so the table shows what it buys on its own.

The data: the sandbox world's gold-labelled pairs (chosen = higher gold utility, Llama 2's small
margins from the utility gap, as in bench/rm_vs_trl.py), with each prompt lengthened by a Python
standard-library docstring passage in front of the question, so a prompt is 128 chat-formatted
tokens and a (prompt, response) sequence 134-190 (mean 148). Only pairs whose gold utilities differ
by at least --min-gap are kept. Why: a 42M model trained from scratch for 40 steps can pick up
surface signals that a bag of tokens carries (the gold's concision penalties for filler, hedges,
list format and confident phrasing) but not arithmetic or when to refuse; a clear gap makes those
signals decide the label more often, so held-out accuracy rises above chance within the budget
(measured during development: 0.63 on the 128 held-out pairs after only 20 steps, one thread). The
held-out split is the same for both and is scored by the same code (`rm_vs_trl.heldout_accuracy`),
after training and outside the timing.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from realistic_harness import (
    StepClock,
    markdown_table,
    run_isolated,
    trl_step_clock,
    write_result,
)
from realistic_model import DEFAULT_CACHE, bpe_tokenizer, build_llama, long_prompts
from rm_vs_trl import gold_row, heldout_accuracy, margin_for, trl_trainer

from tether.labeling.export import PreferenceRow
from tether.labeling.export_files import write_export
from tether.reward.config import RewardTrainConfig
from tether.reward.data import PreferenceData, load_preference_data
from tether.reward.train import train_checkpoint

FRAMEWORKS = ("tether", "tether-plain", "trl")
"""`tether-plain` is Tether with shared-prefix batching off (`--no-shared-prefix`): both full
sequences of a pair, as TRL reads them, so the table shows what each of Tether's changes buys."""


# --- inputs -----------------------------------------------------------------------------------------------


def gold_pairs(
    tokenizer: Any, *, n: int, min_gap: float, prompt_tokens: int, seed: int
) -> list[PreferenceRow]:
    """`n` gold-labelled sandbox pairs whose utilities differ by at least `min_gap`, prompts lengthened."""
    from tether.sandbox.gold import grade
    from tether.sandbox.pairs import sample_pairs
    from tether.sandbox.world import generate_prompts

    prompts = generate_prompts(seed=seed, n=n * 4)
    texts = sorted({p.text for p in prompts})
    longer = dict(zip(texts, long_prompts(tokenizer, texts, tokens=prompt_tokens, seed=seed), strict=True))
    rows = []
    for i, (prompt, a, b) in enumerate(sample_pairs(prompts, n=len(prompts), seed=seed)):
        gap = grade(prompt, a).utility - grade(prompt, b).utility
        if abs(gap) < min_gap:
            continue
        chosen, rejected = (a, b) if gap > 0 else (b, a)
        row = gold_row(prompt, chosen, rejected, margin=margin_for(abs(gap)), task_id=i)
        rows.append(PreferenceRow(**{**row.__dict__, "prompt": longer[prompt.text]}))
        if len(rows) == n:
            return rows
    raise SystemExit(f"only {len(rows)} sandbox pairs have a gold gap >= {min_gap}; lower --min-gap")


def realistic_export(path: Path, args: argparse.Namespace) -> Path:
    """A jsonl export of exactly --train-pairs training and --test-pairs held-out pairs."""
    tokenizer = bpe_tokenizer(cache=args.cache)
    n = args.train_pairs + args.test_pairs
    rows = gold_pairs(tokenizer, n=n, min_gap=args.min_gap, prompt_tokens=args.prompt_tokens, seed=args.seed)
    random.Random(args.seed).shuffle(rows)
    test, train = rows[: args.test_pairs], rows[args.test_pairs :]
    write_export(path, train, test, fmt="jsonl", manifest={"spec_hash": "bench"})
    return path


def train_config(args: argparse.Namespace) -> RewardTrainConfig:
    return RewardTrainConfig(
        epochs=1, batch_size=args.batch_size, lr=args.lr, max_length=args.max_length, margin=True,
        center_coef=0.01, seed=args.seed, log_every=1,
    )  # fmt: skip


# --- one trainer, in its own process ----------------------------------------------------------------------


def train_tether(
    cfg: RewardTrainConfig, data: PreferenceData, base: Path, out: Path
) -> tuple[StepClock, str]:
    clock = StepClock()
    result = train_checkpoint(cfg, data, base=base, out=out, on_step=clock.tick)
    return clock, result.batching


def train_trl(cfg: RewardTrainConfig, data: PreferenceData, base: Path, out: Path) -> tuple[StepClock, str]:
    clock = StepClock()
    trainer = trl_trainer(cfg, data, base, out, callbacks=[trl_step_clock(clock)])
    trainer.train()
    trainer.save_model(str(out))
    return clock, "chosen and rejected as two full sequences (RewardTrainer)"


def worker(args: argparse.Namespace) -> None:
    """Train with one framework, then write its figures to WORK/NAME.json."""
    start = time.perf_counter()
    cfg = replace(train_config(args), shared_prefix=args.worker == "tether")
    data = load_preference_data(args.work / "export")
    out = args.work / f"{args.worker}-rm"
    trainer = train_trl if args.worker == "trl" else train_tether
    clock, batching = trainer(cfg, data, args.work / "base", out)
    seconds, steps = clock.timed(warmup=1)
    payload = {
        "framework": args.worker,
        "threads": torch.get_num_threads(),
        "steps": len(clock.marks),
        "timed_steps": steps,
        "timed_seconds": round(seconds, 3),
        "pairs_per_second": steps * cfg.batch_size / seconds,
        "peak_rss_mb": round(clock.peak_rss_mb, 1),
        "train_end_to_end_seconds": round(time.perf_counter() - start, 2),
        "heldout_accuracy": heldout_accuracy(out, data, cfg.max_length),
        "batching": batching,
    }
    write_result(args.work / f"{args.worker}.json", payload)


# --- main -------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--train-pairs", type=int, default=640, help="Training pairs (a multiple of the batch)."
    )
    parser.add_argument("--test-pairs", type=int, default=128, help="Held-out pairs, scored for both.")
    parser.add_argument("--batch-size", type=int, default=16, help="Pairs per optimizer step.")
    parser.add_argument("--lr", type=float, default=1e-3, help="Peak lr (3%% warmup, linear decay).")
    parser.add_argument("--min-gap", type=float, default=0.2, help="Smallest gold utility gap of a pair.")
    parser.add_argument("--prompt-tokens", type=int, default=128, help="Prompt length, chat-formatted.")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads, the same in every run.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="Tokenizer cache directory.")
    parser.add_argument("--work", type=Path, help="Working directory (default: a temporary one).")
    parser.add_argument("--out", type=Path, help="Write all figures as JSON here.")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_pairs % args.batch_size or args.train_pairs < 2 * args.batch_size:
        parser.error("--train-pairs must be a multiple of --batch-size, at least two batches")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker:
        worker(args)
        return {}
    work = args.work or Path(tempfile.mkdtemp(prefix="rm-realistic-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    parameters = build_llama(work / "base", seed=args.seed, cache=args.cache)
    data = load_preference_data(realistic_export(work / "export", args))
    passed = list(argv if argv is not None else sys.argv[1:])  # a later --work wins in the worker
    runs = {
        name: run_isolated(
            Path(__file__), [*passed, "--worker", name, "--work", str(work)], work / f"{name}.json"
        )
        for name in FRAMEWORKS
    }
    results = {
        "parameters": parameters, "args": {k: str(v) for k, v in vars(args).items()}, "runs": runs,
        "pairs": {"train": len(data.train), "test": len(data.test)},
        "tether_over_trl_pairs_per_second": runs["tether"]["pairs_per_second"]
        / runs["trl"]["pairs_per_second"],
        "tether_plain_over_trl_pairs_per_second": runs["tether-plain"]["pairs_per_second"]
        / runs["trl"]["pairs_per_second"],
        "total_seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    print(report(results))
    if args.out:
        write_result(args.out, results)
    return results


def report(results: dict[str, Any]) -> str:
    runs = results["runs"]
    tether, plain, trl = runs["tether"], runs["tether-plain"], runs["trl"]
    figures = [
        ("pairs/s, training loop (warm-up step excluded)", "pairs_per_second"),
        ("held-out pair accuracy", "heldout_accuracy"),
        ("peak RSS, MiB", "peak_rss_mb"),
        ("process wall time, s", "process_seconds"),
    ]
    rows = [[label, tether[key], plain[key], trl[key], tether[key] / trl[key]] for label, key in figures]
    table = markdown_table(["RM training", "Tether", "Tether, plain batch", "TRL", "Tether / TRL"], rows)
    return (
        f"RM training, Llama {results['parameters']:,} parameters, {results['pairs']['train']} train / "
        f"{results['pairs']['test']} held-out pairs, batch {results['args']['batch_size']}, "
        f"{tether['threads']} threads\n\n{table}\n\nTether: {tether['batching']}\n"
    )


if __name__ == "__main__":
    main()
