"""RLOO against TRL 1.16's RLOOTrainer on the same SFT policy, reward, prompts and sample budget; and
where a Tether PPO step's wall time goes.

    .venv/bin/python bench/rl_vs_trl.py --steps 20 --batch-size 8 --k 4 --betas 0.05 --threads 1

Without --project a small sandbox world is built in a temporary directory (3,000 prompts, the tiny
GPT-2 policy with 400 SFT steps) and the reward is a known-hackable stand-in for a reward model:
gold utility + `--length-bonus` per word. With --project DIR the project's latest SFT policy and
reward model are used (gold is logged when it is a sandbox project).

Equal footing, on purpose:
- same SFT checkpoint, reward callable, pool prompts, k, β (k1 KL summed into the sequence reward,
  TRL's RLOO and Tether's), learning rate (constant), gradient clipping 1.0, max response length,
  temperature 1 with top-k/top-p off, one gradient step per generation batch (Tether:
  ppo_epochs=1, minibatches=1; TRL: num_iterations=1), no advantage whitening, dropout off;
- TRL's defaults gradient_checkpointing=True and bf16=True are turned off (as in bench/rm_vs_trl.py);
- TRL reads the prompt already formatted by the policy's chat template, as Tether generates from it.

Reported per β: wall time per 1,000 sampled responses of the training loop alone, then the final
policy of each, measured by the same code on the held-out "eval" split: sequence KL to the SFT
policy (k1, nats, Tether's unit), reward and gold utility. With two or more β values the gold
utility of each framework is interpolated at a common KL ("matched final KL"). Last, one Tether PPO
step against the sum of its unavoidable parts, each timed alone on the same batch: generation,
no-grad forwards (RM scoring, policy, reference, critic) and the update (forward + backward + step).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tether.artifacts import POLICY_KIND, REWARD_MODEL_KIND, is_sandbox, resolve
from tether.project import Project
from tether.reward.scoring import Scorer
from tether.rl.algorithm import StepContext
from tether.rl.config import RLConfig
from tether.rl.experience import ScoreProcessing, chunked
from tether.rl.inputs import pool_prompts
from tether.rl.kl import kl_per_token, sequence_kl
from tether.rl.metrics import gold_grades, gold_metrics
from tether.rl.models import build_models, logprobs_and_entropy, response_values
from tether.rl.prompts import PromptItem, PromptSampler, repeat_each
from tether.rl.rollout import HFGenerateRollout
from tether.sandbox.policy import format_prompt


@dataclass
class World:
    sft: Path
    scorer: Scorer
    prompts: list[PromptItem]
    eval_prompts: list[PromptItem]
    sandbox: bool
    rm_dir: Path | None


class ProxyScorer:
    """Gold utility + a bonus per word: a reward model whose length bias can be exploited."""

    def __init__(self, prompts: Sequence[PromptItem], length_bonus: float) -> None:
        self.by_text = {p.text: p for p in prompts}
        self.length_bonus = length_bonus

    def score(self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 64) -> np.ndarray:
        items = [self.by_text[p] for p in prompts]
        gold = [g.utility if g is not None else float("nan") for g in gold_grades(items, responses)]
        words = [len(r.split()) for r in responses]
        return np.asarray(
            [g + self.length_bonus * w for g, w in zip(gold, words, strict=True)], dtype=np.float32
        )


def build_world(args: argparse.Namespace, tmp: Path) -> World:
    from tether.sandbox.build import build_world as build_sandbox
    from tether.sandbox.config import SandboxConfig, TinyPolicyConfig
    from tether.scaffold import init_project
    from tether.store import list_prompts

    if args.project:
        project = Project.open(Path(args.project))
    else:
        project = init_project(tmp / "world", template="sandbox")
        build_sandbox(project, SandboxConfig(n_prompts=3000, policy=TinyPolicyConfig(steps=400)))
    sft = resolve(project, kind=POLICY_KIND, explicit=None).path
    prompts = pool_prompts(project)
    with project.store.session() as session:
        records = list_prompts(session, project_id=project.project_id, split="eval", limit=args.eval_prompts)
    eval_prompts = [PromptItem(r.key, r.text, r.stratum, r.meta, r.source) for r in records]
    if args.project:
        from tether.reward.scoring import load_reward_model

        rm = resolve(project, kind=REWARD_MODEL_KIND, explicit=None).path
        return World(sft, load_reward_model(rm), prompts, eval_prompts, is_sandbox(project), rm)
    return World(
        sft, ProxyScorer(prompts + eval_prompts, args.length_bonus), prompts, eval_prompts, True, None
    )


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    sync()
    start = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - start


def tether_context(world: World, cfg: RLConfig) -> tuple[StepContext, Any]:
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from tether.rl.state import prepare
    from tether.rl.update import unwrap

    accelerator = Accelerator()
    set_seed(cfg.seed)
    critic_rm = (world.rm_dir or world.sft) if cfg.algo == "ppo" else None
    value_init = "reward_model" if world.rm_dir else "policy"
    models = build_models(
        world.sft,
        policy_path=None,
        critic_path=None,
        critic_from_rm=critic_rm,
        value_init=value_init,
        seed=cfg.seed,
    )
    model, optimizer, _ = prepare(models, cfg, accelerator)
    policy = unwrap(model, accelerator).policy
    rollout = HFGenerateRollout(policy, models.tokenizer, cfg.max_new_tokens, cfg.temperature)
    processing = ScoreProcessing()
    ctx = StepContext(
        cfg, model, optimizer, accelerator, models.reference, rollout, world.scorer, processing, False
    )
    return ctx, models


def rloo_config(args: argparse.Namespace, beta: float) -> RLConfig:
    return RLConfig(
        algo="rloo", steps=args.steps, batch_size=args.batch_size, samples_per_prompt=args.k,
        max_new_tokens=args.max_new_tokens, lr=args.lr, ppo_epochs=1, minibatches=1, kl="fixed",
        init_kl_coef=beta, whiten=False, normalize_scores=False, seed=args.seed,
    )  # fmt: skip


def run_tether(world: World, args: argparse.Namespace, beta: float) -> tuple[torch.nn.Module, float]:
    from tether.rl.rloo import RLOO
    from tether.rl.update import unwrap

    cfg = rloo_config(args, beta)
    ctx, _ = tether_context(world, cfg)
    sampler = PromptSampler(world.prompts, cfg.seed)
    algo = RLOO()
    _, seconds = timed(lambda: [algo.step(ctx, step, sampler, beta) for step in range(cfg.total_steps)])
    return unwrap(ctx.model, ctx.accelerator).policy, seconds


def run_trl(world: World, args: argparse.Namespace, beta: float, out: Path) -> tuple[torch.nn.Module, float]:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import RLOOConfig, RLOOTrainer

    tokenizer = AutoTokenizer.from_pretrained(world.sft)
    formatted = {format_prompt(tokenizer, p.text): p.text for p in world.prompts}
    rows = [{"prompt": format_prompt(tokenizer, p.text)} for p in world.prompts]

    def reward(prompts: list[str], completions: list[str], **_: Any) -> list[float]:
        raw = [formatted[p] for p in prompts]
        return [float(x) for x in world.scorer.score(raw, [c.strip() for c in completions])]

    config = RLOOConfig(
        output_dir=str(out), per_device_train_batch_size=args.batch_size * args.k, num_generations=args.k,
        max_completion_length=args.max_new_tokens, learning_rate=args.lr, lr_scheduler_type="constant",
        beta=beta, num_iterations=1, max_steps=args.steps, logging_steps=args.steps, report_to="none",
        save_strategy="no", seed=args.seed, use_cpu=not torch.cuda.is_available(), bf16=False,
        gradient_checkpointing=False, max_grad_norm=1.0, temperature=1.0, top_k=0, top_p=1.0,
        normalize_advantages=False, dataloader_num_workers=0,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(world.sft, use_safetensors=True)
    trainer = RLOOTrainer(
        model=model, reward_funcs=reward,  # type: ignore[arg-type]
        args=config, train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )  # fmt: skip
    _, seconds = timed(trainer.train)
    return trainer.model, seconds  # type: ignore[return-value]


@torch.no_grad()
def final_eval(policy: torch.nn.Module, world: World, args: argparse.Namespace) -> dict[str, float]:
    """Sequence KL to SFT (k1), reward and gold of the final policy on the eval split; same code for both."""
    from tether.rl.models import load_policy

    reference, tokenizer = load_policy(world.sft)
    device = next(policy.parameters()).device
    reference.to(device)  # type: ignore[arg-type]
    policy.eval()
    torch.manual_seed(args.seed + 1)
    rollout = HFGenerateRollout(policy, tokenizer, args.max_new_tokens)  # type: ignore[arg-type]
    batch = rollout.generate([p.text for p in world.eval_prompts])
    logp = chunked(lambda b: logprobs_and_entropy(policy, b, 1.0)[0], batch, 64)
    ref = chunked(lambda b: logprobs_and_entropy(reference, b, 1.0)[0], batch, 64)
    kl_rows = sequence_kl(kl_per_token(logp, ref, "k1"), batch.response_mask)  # (N,)
    scores = world.scorer.score([p.text for p in world.eval_prompts], batch.responses)
    out: dict[str, Any] = {
        "kl": kl_rows.mean().item(),
        "reward": float(np.mean(scores)),
        "length": statistics.fmean(len(r.split()) for r in batch.responses),
        "per_prompt_kl": kl_rows.tolist(),
    }
    if world.sandbox:
        grades = gold_grades(world.eval_prompts, batch.responses)
        out["gold"] = gold_metrics(grades).get("gold/utility", float("nan"))
        out["per_prompt_gold"] = [g.utility if g is not None else float("nan") for g in grades]
    return out


def gold_at(points: list[tuple[float, float]], kl: float) -> float:
    """Gold interpolated at `kl` from (kl, gold) points (linear, clamped to their range)."""
    points = sorted(points)
    return float(np.interp(kl, [p[0] for p in points], [p[1] for p in points]))


def ppo_breakdown(world: World, args: argparse.Namespace) -> dict[str, float]:
    """One PPO step's wall time against generation, no-grad forwards and update timed alone."""
    from tether.rl.ppo import PPO
    from tether.rl.update import unwrap

    cfg = RLConfig(
        algo="ppo", steps=args.ppo_steps + 1, batch_size=args.batch_size, samples_per_prompt=args.k,
        max_new_tokens=args.max_new_tokens, lr=args.lr, seed=args.seed, normalize_scores=False,
    )  # fmt: skip
    ctx, models = tether_context(world, cfg)
    sampler = PromptSampler(world.prompts, cfg.seed)
    PPO().step(ctx, 0, sampler, 0.1)  # warm-up
    steps = []
    for i in range(args.ppo_steps):
        steps.append(timed(lambda: PPO().step(ctx, i + 1, sampler, 0.1))[1])  # noqa: B023 (called at once)
    inner = unwrap(ctx.model, ctx.accelerator)
    parts = [component_times(ctx, models.reference, inner, sampler, cfg, i) for i in range(args.ppo_steps)]
    median = {key: statistics.median(p[key] for p in parts) for key in parts[0]}
    total = sum(median.values())
    step = statistics.median(steps)
    return {"step_s": step, **median, "parts_sum_s": total, "overhead_pct": 100 * (step - total) / total}


def component_times(
    ctx: StepContext, reference: torch.nn.Module, inner: Any, sampler: PromptSampler, cfg: RLConfig, i: int
) -> dict[str, float]:
    """Each unavoidable part of a PPO step, timed alone on one fresh batch."""
    from tether.rl.advantages import gae, whiten
    from tether.rl.experience import collect_experience
    from tether.rl.rewards import shaped_rewards
    from tether.rl.update import Targets, ppo_update

    prompts = repeat_each(sampler.draw(cfg.batch_size), cfg.samples_per_prompt)
    texts = [p.text for p in prompts]
    batch, t_gen = timed(lambda: ctx.rollout.generate(texts))
    _, t_rm = timed(lambda: ctx.scorer.score(texts, batch.responses))
    chunk = cfg.minibatch_size
    _, t_pol = timed(
        lambda: chunked(lambda b: logprobs_and_entropy(inner.policy, b, 1.0, entropy=True)[0], batch, chunk)
    )
    _, t_ref = timed(lambda: chunked(lambda b: logprobs_and_entropy(reference, b, 1.0)[0], batch, chunk))
    _, t_val = timed(lambda: chunked(lambda b: response_values(inner.critic, b), batch, chunk))
    exp = collect_experience(
        inner, reference, ctx.rollout, ctx.scorer, prompts, temperature=1.0,
        processing=ctx.processing, kl_estimator="k1", chunk=chunk,
    )  # fmt: skip
    assert exp.values is not None
    adv, ret = gae(shaped_rewards(exp.scores, exp.kl, exp.mask, 0.1), exp.values, exp.mask)
    targets = Targets(whiten(adv, exp.mask), ret)

    def update() -> dict[str, float]:
        return ppo_update(
            ctx.model, ctx.optimizer, exp, targets, cfg, accelerator=ctx.accelerator, step=99 + i
        )

    _, t_upd = timed(update)
    return {
        "generation_s": t_gen, "rm_score_s": t_rm, "policy_forward_s": t_pol, "reference_forward_s": t_ref,
        "critic_forward_s": t_val, "update_s": t_upd,
    }  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--project", help="A Tether project with a policy and a reward_model (default: build one)."
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8, help="Prompts per step.")
    parser.add_argument("--k", type=int, default=4, help="Samples per prompt.")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--betas", default="0.05", help="Comma-separated β values (two or more: matched KL).")
    parser.add_argument(
        "--length-bonus", type=float, default=0.02, help="Proxy reward per word (no --project)."
    )
    parser.add_argument("--eval-prompts", type=int, default=256)
    parser.add_argument("--ppo-steps", type=int, default=3, help="PPO steps timed for the breakdown.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default).")
    parser.add_argument("--out", type=Path, help="Write the results as JSON here.")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        world = build_world(args, Path(tmp))
        samples = args.steps * args.batch_size * args.k
        from tether.rl.models import load_policy

        sft_row = {"framework": "sft", "beta": None, **final_eval(load_policy(world.sft)[0], world, args)}
        results["runs"].append(sft_row)
        print(json.dumps({k: v for k, v in sft_row.items() if not k.startswith("per_prompt")}))
        for beta in [float(b) for b in args.betas.split(",")]:
            for name, runner in (("tether", run_tether), ("trl", None)):
                if runner is None:
                    policy, seconds = run_trl(world, args, beta, Path(tmp) / f"trl-{beta}")
                else:
                    policy, seconds = runner(world, args, beta)
                row = {"framework": name, "beta": beta, "s_per_1k_samples": 1000 * seconds / samples}
                row |= final_eval(policy, world, args)
                results["runs"].append(row)
                print(json.dumps({k: v for k, v in row.items() if not k.startswith("per_prompt")}))
        results["speed"] = speed(results["runs"])
        results["matched"] = matched(results["runs"])
        results["ppo_step"] = ppo_breakdown(world, args)
    summary = {key: results[key] for key in ("speed", "matched", "ppo_step")}
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def matched(runs: list[dict[str, Any]], resamples: int = 2000, seed: int = 0) -> dict[str, Any] | None:
    """Gold of each framework at one common KL (inside both frameworks' measured ranges), and a 95%
    paired bootstrap interval of the difference: the eval prompts are resampled, the same draw for
    every final policy, and each policy's mean KL and gold recomputed before interpolating. It covers
    the eval split's sampling noise, not the spread between training seeds."""
    trained = {f: [r for r in runs if r["framework"] == f and "gold" in r] for f in ("tether", "trl")}
    if min(len(v) for v in trained.values()) < 2:
        return None
    by = {f: [(r["kl"], r["gold"]) for r in v] for f, v in trained.items()}
    low = max(min(k for k, _ in v) for v in by.values())
    high = min(max(k for k, _ in v) for v in by.values())
    if low > high:
        return None
    kl = (low + high) / 2
    out: dict[str, Any] = {
        "kl": kl,
        "tether_gold": gold_at(by["tether"], kl),
        "trl_gold": gold_at(by["trl"], kl),
    }
    out["difference"] = out["tether_gold"] - out["trl_gold"]
    arrays = {
        f: [(np.asarray(r["per_prompt_kl"]), np.asarray(r["per_prompt_gold"])) for r in v]
        for f, v in trained.items()
    }
    n = len(arrays["tether"][0][0])
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(resamples):
        pick = rng.integers(0, n, n)
        at = {
            f: gold_at([(float(k[pick].mean()), float(np.nanmean(g[pick]))) for k, g in v], kl)
            for f, v in arrays.items()
        }
        diffs.append(at["tether"] - at["trl"])
    out["difference_ci95"] = [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))]
    return out


def speed(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """TRL's seconds per 1,000 samples over Tether's, per β, each pair timed back to back."""
    per_beta = {}
    for r in runs:
        if r["framework"] == "tether":
            trl = next(t for t in runs if t["framework"] == "trl" and t["beta"] == r["beta"])
            per_beta[str(r["beta"])] = trl["s_per_1k_samples"] / r["s_per_1k_samples"]
    return {"trl_over_tether": per_beta, "mean": statistics.fmean(per_beta.values())}


if __name__ == "__main__":
    main()
