"""The sandbox's tiny policy: a word-level tokenizer and a GPT-2-style LM trained from scratch.

Both are saved with `save_pretrained` (safetensors), so every later stage loads the sandbox
policy with `AutoTokenizer` / `AutoModelForCausalLM` from a local path, exactly as it would
load a real Hugging Face model. The prompt format lives in the tokenizer's chat template,
which is how later stages format prompts for real chat models too.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from tether import generation
from tether.hf import chat_prompt, prompt_ids
from tether.sandbox.config import TinyPolicyConfig
from tether.spec.model import GenerationPolicy

PAD, UNK, SEP, EOS = "[PAD]", "[UNK]", "[SEP]", "[EOS]"
# Prompt then separator: the response follows it. Kept in the tokenizer so that callers use
# `apply_chat_template(..., add_generation_prompt=True)` for the sandbox and real models alike.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['content'] }}{% endfor %}"
    "{% if add_generation_prompt %} " + SEP + "{% endif %}"
)


def train_tokenizer(texts: Sequence[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer: sandbox text is already space-separated words and punctuation."""
    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordLevelTrainer(special_tokens=[PAD, UNK, SEP, EOS], min_frequency=1)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        unk_token=UNK,
        eos_token=EOS,
        sep_token=SEP,
        padding_side="left",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(tokenizer: PreTrainedTokenizerFast, cfg: TinyPolicyConfig) -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=cfg.n_positions,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    torch.manual_seed(cfg.seed)
    return GPT2LMHeadModel(config)


def format_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> str:
    """The prompt as the model sees it, through the tokenizer's chat template."""
    return chat_prompt(tokenizer, prompt)


def encode_examples(
    tokenizer: PreTrainedTokenizerFast, examples: Sequence[tuple[str, str]], max_len: int
) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) per example, with the prompt masked out so SFT learns responses only."""
    heads = prompt_ids(tokenizer, [p for p, _ in examples])
    tails = tokenizer([r for _, r in examples], add_special_tokens=False)["input_ids"]
    out = []
    for head, tail in zip(heads, tails, strict=True):
        target = [*tail, tokenizer.eos_token_id]
        out.append(([*head, *target][:max_len], ([-100] * len(head) + target)[:max_len]))
    return out


def _collate(batch: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)  # (B, T), right-padded
    labels = torch.full((len(batch), width), -100, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T)
    for row, (seq, lab) in enumerate(batch):
        ids[row, : len(seq)] = torch.tensor(seq)
        labels[row, : len(lab)] = torch.tensor(lab)
        mask[row, : len(seq)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def lr_at(step: int, cfg: TinyPolicyConfig) -> float:
    """Linear warmup to cfg.lr, then cosine decay to 10% of it."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def sft(
    model: GPT2LMHeadModel,
    tokenizer: PreTrainedTokenizerFast,
    examples: Sequence[tuple[str, str]],
    cfg: TinyPolicyConfig,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Supervised fine-tuning on (prompt, response) pairs; returns the loss per step.

    Batches are drawn from length-sorted buckets so that padding stays small on CPU.
    """
    encoded = encode_examples(tokenizer, examples, cfg.n_positions)
    rng = random.Random(cfg.seed)
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i][0]), rng.random()))
    buckets = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.train()
    losses: list[float] = []
    for step in range(cfg.steps):
        # 1. batch: a random length bucket
        batch = _collate([encoded[i] for i in rng.choice(buckets)], tokenizer.pad_token_id)
        # 2. forward
        loss = model(**batch).loss
        # 3. backward and step
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        # 4. log
        losses.append(float(loss.item()))
        if on_step is not None:
            on_step(step, losses[-1])
    model.eval()
    return losses


def sample_responses(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    seed: int,
    max_new_tokens: int = 60,
    batch_size: int = 256,
    temperature: float = 1.0,
) -> list[str]:
    """One sampled response per prompt through `tether.generation`, with the sandbox's settings.

    The word-level tokenizer decodes its tokens joined by single spaces, so the exact text the
    shared path keeps is the sandbox's text as it always was."""
    config = GenerationPolicy(max_new_tokens=max_new_tokens, temperature=temperature, top_k=0)
    return generation.sample_responses(
        model, tokenizer, prompts, config=config, seed=seed, batch_size=batch_size
    )


def save_policy(
    model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast, cfg: TinyPolicyConfig, path: Path
) -> None:
    """save_pretrained with safetensors, plus the SFT config beside the weights."""
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    (path / "tether_sft_config.json").write_text(json.dumps(asdict(cfg), indent=2), encoding="utf-8")
