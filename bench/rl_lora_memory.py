"""Peak resident memory of one RL step, LoRA against full fine-tuning, on the same model.

    OMP_NUM_THREADS=1 .venv/bin/python bench/rl_lora_memory.py

Builds a random-init Llama (about 28M parameters, a byte-level BPE tokenizer trained here) as the
SFT policy and a Llama reward model of the same size, then runs each mode in its own fresh
subprocess: load the models as `tether rl run` does (`tether.rl.models.build_models`), prepare
them, load the reward model, and take ONE algorithm step (generation, scoring, log-probabilities,
the update with its optimizer state). The figure is the subprocess's peak resident set
(`getrusage(RUSAGE_SELF).ru_maxrss`), with the same process's peak after its imports (the Python,
torch and transformers baseline) beside it.

Modes: full RLOO (policy + grads + AdamW states, reference copy, RM), LoRA RLOO (one frozen policy
copy that is also the reference with the adapter off, the adapter's grads and states, RM), full
PPO (full RLOO + a critic initialized from the RM, trained: weights, grads, states), LoRA PPO
(LoRA RLOO + a value head on the policy). The checkpoint write is not part of a step: with LoRA it
briefly holds the merged weights on the CPU (`tether.rl.lora.merged_state_dict`).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

MODES = (("rloo", False), ("rloo", True), ("ppo", False), ("ppo", True))
VOCABULARY = (
    "the a model answer question list code step reason data value user help explain short clear "
    "because first then finally result check test error fix line file write read compute sum small"
)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def texts(n: int, seed: int = 0) -> list[str]:
    rng, words = random.Random(seed), VOCABULARY.split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(6, 18))) + "?" for _ in range(n)]


def build_pair(root: Path, hidden: int, layers: int) -> tuple[Path, Path]:
    """A random-init Llama SFT policy and a same-size Llama reward model, safetensors."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        LlamaForSequenceClassification,
        PreTrainedTokenizerFast,
    )

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts(2000), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|pad|>")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 11 // 4,
        num_hidden_layers=layers,
        num_attention_heads=8,
        num_key_value_heads=8,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    sft, rm = root / "sft", root / "rm"
    LlamaForCausalLM(config).save_pretrained(sft, safe_serialization=True)
    config.num_labels = 1
    LlamaForSequenceClassification(config).save_pretrained(rm, safe_serialization=True)
    for path in (sft, rm):
        tokenizer.save_pretrained(path)
    return sft, rm


def one_step(root: Path, algo: str, lora: bool) -> dict[str, float | int | str]:
    """In a fresh process: the models of `algo` (LoRA or full), then one step. Returns the figures."""
    import torch
    from accelerate import Accelerator

    from tether.reward.scoring import load_reward_model
    from tether.rl.algorithm import StepContext, make_algorithm
    from tether.rl.config import RLConfig
    from tether.rl.experience import ScoreProcessing
    from tether.rl.models import build_models
    from tether.rl.prompts import PromptItem, PromptSampler
    from tether.rl.rollout import HFGenerateRollout
    from tether.rl.state import prepare
    from tether.spec.model import RLPolicy

    after_imports = peak_mib()
    torch.manual_seed(0)
    # rl.lora's defaults: r 16, alpha 32, every linear layer but the output head
    cfg = RLConfig(algo=algo, batch_size=4, samples_per_prompt=2, max_new_tokens=24, lora=lora)  # type: ignore[arg-type]
    cfg = cfg.resolve(RLPolicy())
    sft, rm = root / "sft", root / "rm"
    models = build_models(
        sft,
        policy_path=None,
        critic_path=None,
        critic_from_rm=rm if algo == "ppo" else None,
        value_init="reward_model",
        seed=0,
        lora=cfg.lora_settings,
    )
    accelerator = Accelerator(cpu=True)
    model, optimizer, _ = prepare(models, cfg, accelerator)
    scorer = load_reward_model(rm, device="cpu")
    rollout = HFGenerateRollout(models.trainable.policy, models.tokenizer, cfg.max_new_tokens)
    ctx = StepContext(
        cfg, model, optimizer, accelerator, models.reference, rollout, scorer, ScoreProcessing(), False,
        models.reference_off,
    )  # fmt: skip
    prompts = [PromptItem(str(i), t) for i, t in enumerate(texts(64, seed=1))]
    out = make_algorithm(algo).step(ctx, 0, PromptSampler(prompts, 0), 0.05)
    # every tensor once: with LoRA the reference IS the policy
    modules = (models.trainable, models.reference, scorer.model)
    held = {id(p): p for m in modules for p in m.parameters()}
    return {
        "algo": algo,
        "mode": "lora" if lora else "full",
        "peak_mib": round(peak_mib(), 1),
        "after_imports_mib": round(after_imports, 1),
        "params_held": sum(p.numel() for p in held.values()),
        "params_trained": sum(p.numel() for group in optimizer.param_groups for p in group["params"]),
        "policy_params": sum(p.numel() for p in models.reference.parameters() if not p.requires_grad),
        "kl": round(out.metrics["objective/kl"], 6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--child", nargs=3, metavar=("DIR", "ALGO", "LORA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        root, algo, lora = args.child
        print(json.dumps(one_step(Path(root), algo, lora == "1")))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_pair(root, args.hidden, args.layers)
        rows = []
        for algo, lora in MODES:
            cmd = [sys.executable, __file__, "--child", str(root), algo, "1" if lora else "0"]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    size = rows[0]["policy_params"] / 1e6
    print(f"policy: random-init Llama, {size:.1f}M parameters (fp32); the RM is the same size")
    print(f"{'mode':<11} {'peak RSS':>10} {'after imports':>14} {'params held':>12} {'trained':>10}")
    for r in rows:
        print(
            f"{r['mode'] + ' ' + r['algo']:<11} {r['peak_mib']:>7.0f} MiB "
            f"{r['after_imports_mib']:>10.0f} MiB {r['params_held'] / 1e6:>10.1f}M "
            f"{r['params_trained'] / 1e6:>9.2f}M"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
