"""Reward-model training throughput and held-out accuracy: Tether against TRL 1.16's RewardTrainer.

    .venv/bin/python bench/rm_vs_trl.py --pairs 2000 --epochs 1 --batch-size 32 --threads 1

Both trainers get the same export, the same backbone, the same epochs, batch size, learning rate,
linear warmup/decay schedule, gradient clipping, max_length, margin and centering coefficient,
in one process on the same machine. Without --data, a sandbox export is made up: gold-graded
pairs of SFT-style responses (chosen = higher gold utility, margin from the utility gap), 10% held
out. Without --base, the backbone is an untrained GPT-2 of the sandbox policy's size whose
word-level tokenizer is trained on the export's text.

Equal footing, on purpose:
- TRL gets its processed format, the token ids of Tether's layout (`tether.hf.ScoredLayout`), so
  both read `scored_text(prompt, response)` token for token (checked below).
- TRL's defaults gradient_checkpointing=True and bf16=True are turned off: Tether uses neither
  on CPU, and checkpointing would slow TRL down for reasons unrelated to the trainer.
- Dropout is off in both (TRL's default `disable_dropout=True`).

Reported, as medians of --repeats interleaved runs: pairs/second of the training loop alone
(Tether's `fit`, TRL's `trainer.train()`) and end-to-end wall time (load, tokenize, train, save);
then the held-out accuracy of both last checkpoints, scored by the same code
(`tether.reward.model.score_pairs`). Tether runs first in every round, so a one-off warm-up cost
falls on Tether.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from tether.hf import ScoredLayout
from tether.labeling.export import PreferenceRow, split_heldout
from tether.labeling.export_files import write_export
from tether.reward.config import RewardTrainConfig
from tether.reward.data import PreferenceData, encode_pairs, load_preference_data
from tether.reward.loss import pair_accuracy
from tether.reward.model import score_pairs
from tether.reward.train import train_checkpoint
from tether.sandbox.config import TinyPolicyConfig
from tether.sandbox.gold import grade
from tether.sandbox.pairs import sample_pairs
from tether.sandbox.policy import build_model, save_policy, train_tokenizer
from tether.sandbox.world import SandboxPrompt, generate_prompts


@dataclass(frozen=True)
class Outcome:
    trainer: str
    pairs_per_second: float
    train_seconds: float
    end_to_end_seconds: float
    heldout_accuracy: float


# --- inputs -----------------------------------------------------------------------------------------------


def margin_for(gap: float) -> float:
    """Llama 2's small margins by gold utility gap: slight, clear, strong."""
    return 1 / 3 if gap < 0.1 else 2 / 3 if gap < 0.3 else 1.0


def gold_row(
    prompt: SandboxPrompt, chosen: str, rejected: str, *, margin: float, task_id: int
) -> PreferenceRow:
    return PreferenceRow(
        prompt=prompt.text,
        chosen=chosen,
        rejected=rejected,
        dimension=prompt.dimension,
        stratum=prompt.stratum,
        origin="bench",
        margin=margin,
        agreement=1.0,
        n_votes=1,
        rater_ids=(1,),
        rater_names=("gold",),
        task_id=task_id,
    )


def sandbox_export(path: Path, *, pairs: int, seed: int) -> Path:
    """A gold-labelled sandbox export of about `pairs` pairs (pairs gold cannot tell apart are dropped)."""
    prompts = generate_prompts(seed=seed, n=int(pairs * 1.4))
    rows = []
    for i, (prompt, a, b) in enumerate(sample_pairs(prompts, n=len(prompts), seed=seed)):
        gap = grade(prompt, a).utility - grade(prompt, b).utility
        if gap == 0:
            continue
        chosen, rejected = (a, b) if gap > 0 else (b, a)
        rows.append(gold_row(prompt, chosen, rejected, margin=margin_for(abs(gap)), task_id=i))
        if len(rows) == pairs:
            break
    train, test = split_heldout(rows, share=0.1, seed=seed)
    write_export(path, train, test, fmt="jsonl", manifest={"spec_hash": "bench"})
    return path


def tiny_base(path: Path, data: PreferenceData, *, layers: int, width: int) -> Path:
    """An untrained GPT-2 (default: the sandbox policy's size) with a tokenizer trained on the export."""
    texts = [text for p in data.train + data.test for text in (p.prompt, p.chosen, p.rejected)]
    tokenizer = train_tokenizer(texts)
    cfg = TinyPolicyConfig(n_layer=layers, n_embd=width, n_head=max(1, width // 64), n_positions=256)
    save_policy(build_model(tokenizer, cfg), tokenizer, cfg, path)
    return path


# --- the two trainers -------------------------------------------------------------------------------------


def run_tether(
    cfg: RewardTrainConfig, data: PreferenceData, base: Path, out: Path
) -> tuple[float, float, float]:
    start = time.perf_counter()
    result = train_checkpoint(cfg, data, base=base, out=out)
    return result.pairs_per_second, result.seconds, time.perf_counter() - start


def trl_dataset(tokenizer: Any, data: PreferenceData, with_margin: bool, max_length: int = 10**9) -> Any:
    """TRL's processed format (`chosen_ids`, `rejected_ids`): the token ids Tether's layout gives each
    pair, so both trainers read the same tokens whatever the chat template's closing (TRL would
    otherwise append EOS after a ChatML closing of `<|im_end|>` and a newline)."""
    from datasets import Dataset

    pairs, _ = encode_pairs(ScoredLayout.for_tokenizer(tokenizer), data.train, max_length)
    columns: dict[str, list[Any]] = {
        "chosen_ids": [p.chosen_ids for p in pairs],
        "rejected_ids": [p.rejected_ids for p in pairs],
    }
    if with_margin:
        columns["margin"] = [p.margin for p in pairs]
    return Dataset.from_dict(columns)


def run_trl(
    cfg: RewardTrainConfig, data: PreferenceData, base: Path, out: Path
) -> tuple[float, float, float]:
    start = time.perf_counter()
    trainer = trl_trainer(cfg, data, base, out)
    train_start = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - train_start
    trainer.save_model(str(out))
    pairs = len(trainer.train_dataset) * cfg.epochs
    return pairs / train_seconds, train_seconds, time.perf_counter() - start


def trl_trainer(
    cfg: RewardTrainConfig, data: PreferenceData, base: Path, out: Path, callbacks: Sequence[Any] = ()
) -> Any:
    """TRL's RewardTrainer on the same pairs and schedule as Tether's, its token ids checked against ours."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    tokenizer = AutoTokenizer.from_pretrained(base)
    torch.manual_seed(cfg.seed)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, use_safetensors=True)
    model.config.pad_token_id = tokenizer.pad_token_id
    args = RewardConfig(
        output_dir=str(out.parent / "trl-work"),
        per_device_train_batch_size=cfg.batch_size,
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.lr,
        lr_scheduler_type="linear",
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.grad_clip,
        max_length=cfg.max_length,
        center_rewards_coefficient=cfg.center_coef or None,
        gradient_checkpointing=False,
        bf16=False,
        use_cpu=not torch.cuda.is_available(),
        report_to=[],
        save_strategy="no",
        logging_steps=50,
        disable_tqdm=True,
        seed=cfg.seed,
    )
    dataset = trl_dataset(tokenizer, data, cfg.margin, cfg.max_length)
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=list(callbacks) or None,
    )
    check_same_tokens(trainer.train_dataset, tokenizer, data, cfg.max_length)
    return trainer


def check_same_tokens(trl_rows: Any, tokenizer: Any, data: PreferenceData, max_length: int) -> None:
    """TRL's token ids of the first pairs must be Tether's (both read scored_text)."""
    ours, _ = encode_pairs(ScoredLayout.for_tokenizer(tokenizer), data.train[:20], max_length)
    theirs = trl_rows.select(range(min(20, len(trl_rows))))
    for mine, row in zip(ours, theirs, strict=False):
        if mine.chosen_ids != list(row["chosen_ids"]) or mine.rejected_ids != list(row["rejected_ids"]):
            raise SystemExit("TRL and Tether tokenized a pair differently; the comparison would be unfair")


def heldout_accuracy(checkpoint: Path, data: PreferenceData, max_length: int) -> float:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, use_safetensors=True)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    test, _ = encode_pairs(ScoredLayout.for_tokenizer(tokenizer), data.test, max_length)
    r_chosen, r_rejected = score_pairs(model, test, pad_id=int(tokenizer.pad_token_id))
    return float(pair_accuracy(r_chosen, r_rejected).item())


# --- main -------------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="export directory (default: a synthetic sandbox export)")
    parser.add_argument("--base", type=Path, help="backbone directory (default: an untrained tiny GPT-2)")
    parser.add_argument("--pairs", type=int, default=2000, help="pairs in the synthetic export")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--center-coef", type=float, default=0.01)
    parser.add_argument("--no-margin", action="store_true")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each trainer; medians are reported")
    parser.add_argument("--layers", type=int, default=2, help="layers of the built backbone (no --base)")
    parser.add_argument(
        "--width", type=int, default=128, help="hidden size of the built backbone (no --base)"
    )
    parser.add_argument("--work", type=Path, help="working directory (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="rm-vs-trl-"))
    data_dir = args.data or sandbox_export(work / "export", pairs=args.pairs, seed=args.seed)
    data = load_preference_data(data_dir)
    base = args.base or tiny_base(work / "base", data, layers=args.layers, width=args.width)
    cfg = RewardTrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_length=args.max_length,
        margin=not args.no_margin,
        center_coef=args.center_coef,
        seed=args.seed,
    )
    device = (
        torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"export {data_dir}: {len(data.train)} train / {len(data.test)} held-out pairs; base {base}; {device}"
    )
    runners = {"tether": run_tether, "trl": run_trl}
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runners}
    for rep in range(args.repeats):  # interleaved, so a busy spell on a shared machine hits both
        for name, runner in runners.items():
            out = work / f"{name}-{rep}"
            runs[name].append(runner(cfg, data, base, out))
    outcomes = []
    for name, results in runs.items():
        pps, train_s, total_s = (statistics.median(r[k] for r in results) for k in range(3))
        acc = heldout_accuracy(work / f"{name}-{args.repeats - 1}", data, cfg.max_length)
        outcomes.append(Outcome(name, pps, train_s, total_s, acc))
    report(outcomes, cfg, args.json)


def report(outcomes: list[Outcome], cfg: RewardTrainConfig, json_path: Path | None) -> None:
    print(f"{'trainer':8} {'pairs/s':>9} {'train s':>9} {'end-to-end s':>13} {'held-out acc':>13}")
    for o in outcomes:
        print(
            f"{o.trainer:8} {o.pairs_per_second:9.1f} {o.train_seconds:9.2f} "
            f"{o.end_to_end_seconds:13.2f} {o.heldout_accuracy:13.3f}"
        )
    tether, trl = outcomes
    ratio = tether.pairs_per_second / trl.pairs_per_second
    e2e = trl.end_to_end_seconds / tether.end_to_end_seconds
    print(f"Tether / TRL: {ratio:.2f}x pairs/s in the training loop, {e2e:.2f}x end to end (target >= 1.5x)")
    if json_path:
        payload = {"config": asdict(cfg), "outcomes": [asdict(o) for o in outcomes], "ratio": ratio}
        json_path.write_text(json.dumps(payload, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
