"""A realistic-size backbone for the benchmarks, built offline: a 32k byte-level BPE and a ~42M Llama.

    .venv/bin/python bench/realistic_model.py /tmp/llama-42m        # build, print the parameter count

The tokenizer is trained with the `tokenizers` library on the Python standard library's own .py
and .txt sources (always present, ~30 MB, so all 32,000 merges are reachable; no network, no Hub)
and cached under ~/.cache/tether-bench/ (or --cache), keyed by vocabulary size, corpus cap and
Python version, so reruns skip training. Special tokens: <|begin_of_text|> (BOS), <|im_end|> (EOS),
<|pad|> (pad) and <|im_start|>; the chat template is ChatML opened by BOS. No post-processor adds
special tokens, so TRL and Tether see the same ids whether or not they pass add_special_tokens.

The model is a random-init `LlamaForCausalLM` (hidden 512, 8 layers, 8 heads, MLP 1376, RoPE,
context 512, tied embeddings: 41.7M parameters), saved with safetensors next to its tokenizer,
which is how Tether loads any own Hugging Face model (`tether.hf.load_causal_lm`). Random weights
are enough for throughput; the reward-model benchmark trains it from scratch on a learnable rule.

Long prompts come from the standard library's docstrings too (`long_prompts`): a passage cut to a
token budget, then a short question, so every prompt is within a few tokens of the target length.
"""

from __future__ import annotations

import argparse
import ast
import random
import sys
import sysconfig
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BOS, EOS, PAD, IM_START = "<|begin_of_text|>", "<|im_end|>", "<|pad|>", "<|im_start|>"
CHATML = (
    "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
DEFAULT_CACHE = Path.home() / ".cache" / "tether-bench"
CORPUS_BYTES = 24_000_000
"""Cap on the training corpus (the first files in sorted order): enough for 32k merges, ~1 min."""


@dataclass(frozen=True)
class LlamaShape:
    """The benchmark backbone's shape (Llama architecture)."""

    hidden: int = 512
    layers: int = 8
    heads: int = 8
    kv_heads: int = 8
    intermediate: int = 1376
    context: int = 512
    tie_embeddings: bool = True


# --- the tokenizer ----------------------------------------------------------------------------------------


def stdlib_files() -> list[Path]:
    """The standard library's .py and .txt files in sorted order (site-packages left out)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [p for p in root.rglob("*") if p.suffix in (".py", ".txt") and "site-packages" not in p.parts]
    return sorted(p for p in files if p.is_file())


def corpus(limit: int = CORPUS_BYTES) -> Iterator[str]:
    """Texts of the first stdlib files, up to `limit` bytes in all."""
    used = 0
    for path in stdlib_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        used += len(text)
        yield text
        if used >= limit:
            return


def tokenizer_dir(cache: Path, vocab_size: int) -> Path:
    version = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    return cache / f"bpe-{vocab_size}-stdlib{CORPUS_BYTES // 1_000_000}mb-py{version}"


def bpe_tokenizer(vocab_size: int = 32_000, cache: Path = DEFAULT_CACHE) -> Any:
    """A byte-level BPE tokenizer of `vocab_size` ids (specials included), trained once, then cached."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    where = tokenizer_dir(cache, vocab_size)
    if (where / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(where)
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS, PAD, IM_START],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD)
    fast.chat_template = CHATML
    fast.save_pretrained(where)
    return AutoTokenizer.from_pretrained(where)


# --- the model --------------------------------------------------------------------------------------------


def llama_config(shape: LlamaShape, tokenizer: Any) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=shape.context,
        tie_word_embeddings=shape.tie_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        attention_dropout=0.0,
    )


def build_llama(
    path: Path, *, shape: LlamaShape = LlamaShape(), seed: int = 0, cache: Path = DEFAULT_CACHE
) -> int:
    """A random-init LlamaForCausalLM and the cached tokenizer, saved to `path`; returns its parameters."""
    import torch
    from transformers import LlamaForCausalLM

    tokenizer = bpe_tokenizer(cache=cache)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(llama_config(shape, tokenizer))
    model.generation_config.do_sample = False  # no sampling defaults for either framework to inherit
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return parameter_count(model)


def build_reward_model(policy: Path, path: Path, *, seed: int) -> Path:
    """The policy's architecture with a fresh scalar head (random backbone and head), saved to `path`."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(policy)
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(policy, num_labels=1, use_safetensors=True)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def parameter_count(model: Any) -> int:
    """Distinct parameters (a tied embedding counted once)."""
    return sum(p.numel() for p in model.parameters())


# --- long prompts -----------------------------------------------------------------------------------------


def docstring_passages(min_chars: int = 600) -> list[str]:
    """Docstrings of at least `min_chars` characters from the stdlib, whitespace-collapsed, in file order."""
    out = []
    for path in stdlib_files():
        if path.suffix != ".py" or "test" in path.parts or "idlelib" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= min_chars:
                    out.append(" ".join(doc.split()))
    return out


def cut_to_tokens(tokenizer: Any, text: str, n: int) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:n]
    return str(tokenizer.decode(ids))


def long_prompts(tokenizer: Any, questions: Sequence[str], *, tokens: int, seed: int) -> list[str]:
    """One prompt per question: a stdlib passage, then the question, about `tokens` chat-formatted tokens.

    The passage is cut so that the prompt as the model sees it (`tether.hf.chat_prompt`) has `tokens`
    tokens, within a token or two of BPE boundary effects."""
    from tether.hf import chat_prompt

    def length(text: str) -> int:
        return len(tokenizer(chat_prompt(tokenizer, text), add_special_tokens=False)["input_ids"])

    passages = docstring_passages()
    rng = random.Random(seed)
    out = []
    for question in questions:
        tail = f"\n\nWith that in mind: {question}"
        passage, room = rng.choice(passages), tokens - length(tail)
        prompt = cut_to_tokens(tokenizer, passage, max(room, 1)) + tail
        for _ in range(3):  # tokens merge across the cut: trim by the excess until it fits
            excess = length(prompt) - tokens
            if excess <= 0:
                break
            room -= excess
            prompt = cut_to_tokens(tokenizer, passage, max(room, 1)) + tail
        out.append(prompt)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("out", type=Path, help="Directory to save the model and tokenizer to.")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="Tokenizer cache directory.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    count = build_llama(args.out, seed=args.seed, cache=args.cache)
    print(f"{args.out}: LlamaForCausalLM, {count:,} parameters, {LlamaShape()}")


if __name__ == "__main__":
    main()
