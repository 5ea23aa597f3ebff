"""A tiny random-init Llama with a byte-level BPE tokenizer and a ChatML template, built offline.

What a team brings to `tether policy register`, in miniature: a Hugging Face causal LM saved with
safetensors and its tokenizer, with no sandbox code involved.
"""

from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TEXT = [
    "How do I reverse a list in Python?\nUse `items[::-1]` or `items.reverse()`.",
    "- first point\n- second point\n\n```python\ndef f(x):\n    return x * 2\n```",
    "The capital of France is Paris. I think that is right, but please check.",
]


def byte_level_tokenizer(*, pad: bool = True):  # type: ignore[no-untyped-def]
    """A byte-level BPE tokenizer trained on a few lines (Llama-3 style: no pad token when not `pad`)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + (["<|pad|>"] if pad else [])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(TEXT * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|pad|>" if pad else None
    )
    fast.chat_template = CHATML
    return fast


def save_tiny_llama(path: Path, *, pad: bool = True, seed: int = 0) -> Path:
    """A random-init LlamaForCausalLM (hidden 32, 2 layers) and its tokenizer, saved to `path`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = byte_level_tokenizer(pad=pad)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path
