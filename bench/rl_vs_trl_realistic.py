"""RL at a realistic size, CPU: Tether RLOO against TRL 1.16's RLOOTrainer and GRPOTrainer, and a Tether
PPO step against the sum of its unavoidable parts.

    .venv/bin/python bench/rl_vs_trl_realistic.py --threads 2 --out /tmp/rl-realistic.json

The policy is `bench/realistic_model.py`'s random-init Llama (41.7M parameters, 32k byte-level BPE);
the reward model is the same architecture with a scalar head (random init: throughput does not
depend on the weights), scored by each framework's own RM path (TRL: `reward_funcs=<RM directory>`,
which reads prompt + completion; Tether: `tether.reward.scoring.RewardModel`, which reads
`scored_text`, the same text and one EOS token more). Prompts are ~128 chat-formatted tokens (a standard
library docstring passage, then a sandbox question), responses a fixed 128 new tokens: a random-init
model over 32k ids samples EOS about once in 32,000 tokens, so every batch runs to the maximum
length on all sides. 128 rather than 256 new tokens keeps the whole benchmark near 20 minutes on
2 cores; decoding is memory-bound at this batch size, so its share of a step is already the
largest at 128.

bench/rl_vs_trl.py's equal footing holds: the same initial policy, RM, prompt pool, k, β, lr
(constant), grad clip 1.0, lengths, temperature 1 with top-k/top-p off, one gradient step per
generation batch (Tether ppo_epochs=1, minibatches=1; TRL num_iterations=1), no advantage whitening,
dropout off, fp32, TRL's gradient_checkpointing and bf16 defaults off. Each run is a fresh
subprocess with the same torch threads (`realistic_harness.run_isolated`); the first step is a
warm-up left out of the timing; samples/s counts sampled responses per second of the training loop.

Tether has no GRPO yet, so Tether RLOO is also set against TRL's GRPOTrainer: the two differ in the
advantage formula (leave-one-out mean against group mean and std), a few vector ops per batch, and
in where β enters (k1 in the sequence reward against k3 in the token loss), also negligible. Both
aggregate the token loss over the batch's tokens (TRL's loss_type "dapo", its default). TRL's GRPO
with one iteration skips the no-grad policy forward its RLOO runs; Tether's RLOO skips it too.

Last, the PPO step of bench/rl_vs_trl.py (`ppo_breakdown`: Tether's defaults, 4 epochs x 2
minibatches, critic from the RM) at this size: its wall time against generation, the no-grad
forwards of RM, policy, reference and critic, and the update, each timed alone on the same batch.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from realistic_harness import (
    StepClock,
    markdown_table,
    peak_rss_mb,
    run_isolated,
    trl_step_clock,
    write_result,
)
from realistic_model import DEFAULT_CACHE, bpe_tokenizer, build_llama, build_reward_model, long_prompts
from rl_vs_trl import World, ppo_breakdown, rloo_config, tether_context

from tether.hf import chat_prompt
from tether.rl.prompts import PromptItem, PromptSampler

RUNS = ("tether-rloo", "trl-rloo", "trl-grpo", "tether-ppo")


# --- inputs -----------------------------------------------------------------------------------------------


def write_prompts(path: Path, args: argparse.Namespace) -> None:
    """--prompts long prompts (a stdlib passage, then a sandbox question), a JSON list every run reads."""
    from tether.sandbox.world import generate_prompts

    questions = [p.text for p in generate_prompts(seed=args.seed, n=args.prompts)]
    texts = long_prompts(
        bpe_tokenizer(cache=args.cache), questions, tokens=args.prompt_tokens, seed=args.seed
    )
    path.write_text(json.dumps(texts, indent=1) + "\n", encoding="utf-8")


def load_world(work: Path) -> World:
    from tether.reward.scoring import load_reward_model

    texts = json.loads((work / "prompts.json").read_text(encoding="utf-8"))
    prompts = [PromptItem(f"p{i}", text) for i, text in enumerate(texts)]
    return World(work / "policy", load_reward_model(work / "rm"), prompts, [], False, work / "rm")


# --- the runs, one per process ----------------------------------------------------------------------------


def tether_rloo(world: World, args: argparse.Namespace) -> StepClock:
    from tether.rl.rloo import RLOO

    cfg = rloo_config(argparse.Namespace(**{**vars(args), "steps": args.steps + 1}), args.beta)
    ctx, _ = tether_context(world, cfg)
    sampler = PromptSampler(world.prompts, cfg.seed)
    clock = StepClock()
    for step in range(cfg.total_steps):
        RLOO().step(ctx, step, sampler, args.beta)
        clock.tick()
    return clock


def trl_config(kind: str, args: argparse.Namespace, out: Path) -> Any:
    from trl import GRPOConfig, RLOOConfig

    common: dict[str, Any] = dict(
        output_dir=str(out), per_device_train_batch_size=args.batch_size * args.k, num_generations=args.k,
        max_completion_length=args.max_new_tokens, learning_rate=args.lr, lr_scheduler_type="constant",
        beta=args.beta, num_iterations=1, epsilon=0.2, max_steps=args.steps + 1, logging_steps=args.steps + 1,
        report_to="none", save_strategy="no", seed=args.seed, use_cpu=not torch.cuda.is_available(),
        bf16=False, gradient_checkpointing=False, max_grad_norm=1.0, temperature=1.0, top_k=0, top_p=1.0,
        disable_dropout=True, mask_truncated_completions=False, dataloader_num_workers=0,
    )  # fmt: skip
    if kind == "rloo":
        return RLOOConfig(**common, normalize_advantages=False)
    return GRPOConfig(**common, loss_type="dapo", scale_rewards="group")


def trl_run(kind: str, world: World, args: argparse.Namespace) -> StepClock:
    """TRL's RLOOTrainer or GRPOTrainer on the same policy, RM (its own scoring path) and prompts."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer, RLOOTrainer

    tokenizer = AutoTokenizer.from_pretrained(world.sft)
    rows = [{"prompt": chat_prompt(tokenizer, p.text)} for p in world.prompts]
    model = AutoModelForCausalLM.from_pretrained(world.sft, use_safetensors=True)
    clock = StepClock()
    trainer = (RLOOTrainer if kind == "rloo" else GRPOTrainer)(
        model=model, reward_funcs=str(world.rm_dir), args=trl_config(kind, args, args.work / f"trl-{kind}"),
        train_dataset=Dataset.from_list(rows), processing_class=tokenizer, callbacks=[trl_step_clock(clock)],
    )  # fmt: skip
    trainer.train()
    return clock


def worker(args: argparse.Namespace) -> None:
    """One run in this process; its figures go to WORK/RUN.json."""
    world = load_world(args.work)
    payload: dict[str, Any] = {"run": args.worker, "threads": torch.get_num_threads()}
    if args.worker == "tether-ppo":
        payload |= ppo_breakdown(world, args)
        payload["peak_rss_mb"] = round(peak_rss_mb(), 1)
        payload["step_over_parts"] = payload["step_s"] / payload["parts_sum_s"]
    else:
        kind = args.worker.split("-")[1]
        clock = tether_rloo(world, args) if args.worker == "tether-rloo" else trl_run(kind, world, args)
        seconds, steps = clock.timed(warmup=1)
        payload |= {
            "steps": len(clock.marks), "timed_steps": steps, "timed_seconds": round(seconds, 3),
            "samples_per_second": steps * args.batch_size * args.k / seconds,
            "peak_rss_mb": round(clock.peak_rss_mb, 1),
        }  # fmt: skip
    write_result(args.work / f"{args.worker}.json", payload)


# --- main -------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="Timed RL steps per run (after one warm-up).")
    parser.add_argument("--batch-size", type=int, default=4, help="Prompts per step.")
    parser.add_argument("--k", type=int, default=4, help="Samples per prompt.")
    parser.add_argument("--prompt-tokens", type=int, default=128, help="Prompt length, chat-formatted.")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="Response length (EOS is rare).")
    parser.add_argument("--beta", type=float, default=0.05, help="KL coefficient, the same for every run.")
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--ppo-steps", type=int, default=2, help="PPO steps timed for the breakdown.")
    parser.add_argument("--prompts", type=int, default=64, help="Prompts in the pool.")
    parser.add_argument(
        "--runs", default=",".join(RUNS), help=f"Comma-separated subset of {', '.join(RUNS)}."
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads, the same in every run.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="Tokenizer cache directory.")
    parser.add_argument("--work", type=Path, help="Working directory (default: a temporary one).")
    parser.add_argument("--out", type=Path, help="Write all figures as JSON here.")
    parser.add_argument("--worker", choices=RUNS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.runs.split(",")) - set(RUNS)
    if unknown:
        parser.error(f"unknown --runs {', '.join(sorted(unknown))}; choose from {', '.join(RUNS)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker:
        worker(args)
        return {}
    work = args.work or Path(tempfile.mkdtemp(prefix="rl-realistic-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    parameters = build_llama(work / "policy", seed=args.seed, cache=args.cache)
    build_reward_model(work / "policy", work / "rm", seed=args.seed + 1)
    write_prompts(work / "prompts.json", args)
    passed = list(argv if argv is not None else sys.argv[1:])  # a later --work wins in the worker
    runs = {
        name: run_isolated(
            Path(__file__), [*passed, "--worker", name, "--work", str(work)], work / f"{name}.json"
        )
        for name in RUNS
        if name in args.runs.split(",")
    }
    results = {
        "parameters": parameters, "args": {k: str(v) for k, v in vars(args).items()}, "runs": runs,
        "ratios": ratios(runs), "total_seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    print(report(results))
    if args.out:
        write_result(args.out, results)
    return results


def ratios(runs: dict[str, dict[str, Any]]) -> dict[str, float]:
    out = {}
    tether = runs.get("tether-rloo")
    for name in ("trl-rloo", "trl-grpo"):
        if tether and name in runs:
            out[f"tether_rloo_over_{name.replace('-', '_')}"] = (
                tether["samples_per_second"] / runs[name]["samples_per_second"]
            )
    if "tether-ppo" in runs:
        out["ppo_step_over_parts"] = runs["tether-ppo"]["step_over_parts"]
    return out


def report(results: dict[str, Any]) -> str:
    runs, args = results["runs"], results["args"]
    head = (
        f"RL, Llama {results['parameters']:,} parameters, {args['batch_size']} prompts x k={args['k']}, "
        f"~{args['prompt_tokens']} prompt + {args['max_new_tokens']} response tokens, beta {args['beta']}, "
        f"{args['threads']} threads\n"
    )
    sections = [head]
    tether = runs.get("tether-rloo")
    rows = [
        [
            name,
            r["samples_per_second"],
            r["peak_rss_mb"],
            tether["samples_per_second"] / r["samples_per_second"],
        ]
        if tether
        else [name, r["samples_per_second"], r["peak_rss_mb"], "-"]
        for name, r in runs.items()
        if "samples_per_second" in r
    ]
    if rows:
        header = ["run", "samples/s (warm-up excluded)", "peak RSS, MiB", "Tether RLOO / run"]
        sections.append(markdown_table(header, rows))
        sections.append(
            "\nTether has no GRPO: Tether RLOO against TRL GRPO differ only in the advantage formula "
            "(and where beta enters), whose cost is negligible.\n"
        )
    if "tether-ppo" in runs:
        sections.append(ppo_table(runs["tether-ppo"]))
    return "\n".join(sections)


def ppo_table(ppo: dict[str, Any]) -> str:
    parts = ["generation_s", "rm_score_s", "policy_forward_s", "reference_forward_s", "critic_forward_s"]
    rows = [[key.removesuffix("_s").replace("_", " "), ppo[key]] for key in [*parts, "update_s"]]
    rows += [["sum of parts", ppo["parts_sum_s"]], ["PPO step", ppo["step_s"]]]
    rows += [["step / sum of parts", ppo["step_over_parts"]], ["peak RSS, MiB", ppo["peak_rss_mb"]]]
    return markdown_table(["Tether PPO step, parts timed alone", "seconds"], rows) + "\n"


if __name__ == "__main__":
    main()
