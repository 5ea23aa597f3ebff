"""Loading Hugging Face models and tokenizers from local paths, safetensors only.

Every stage loads models through here, the sandbox's tiny policy included, so the sandbox
exercises exactly the code path a real model takes. Pickled checkpoints are refused: loading
one can run arbitrary code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tether.errors import TetherInputError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def quiet_transformers() -> None:
    """Keep transformers' info logs and download bars out of Tether's own progress display."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def require_safetensors(path: Path) -> None:
    """Raise unless `path` is a model directory whose weights are in safetensors files."""
    if not path.is_dir():
        raise TetherInputError(f"{path}: model directory not found")
    if not any(path.glob("*.safetensors")):
        pickled = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt"))
        found = f" (found {', '.join(pickled)})" if pickled else ""
        raise TetherInputError(
            f"{path}: no .safetensors weights{found}; Tether never unpickles checkpoints. "
            "Convert with model.save_pretrained(path, safe_serialization=True)"
        )


def load_causal_lm(path: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(model, tokenizer) from a local directory, weights from safetensors only, in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    require_safetensors(path)
    quiet_transformers()
    tokenizer = ensure_pad_token(AutoTokenizer.from_pretrained(path), where=str(path))
    model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True)
    model.eval()
    return model, tokenizer


def ensure_pad_token(
    tokenizer: PreTrainedTokenizerBase, *, where: str = "tokenizer"
) -> PreTrainedTokenizerBase:
    """The tokenizer, with EOS as its pad token when it has none (Llama-3 style tokenizers).

    Every stage that loads a tokenizer goes through this one rule. EOS rather than a new token:
    adding a token would grow the vocabulary, so the embeddings would have to be resized and the
    new row would be untrained. Padding is always masked out (attention mask, response mask, and
    the reward head reads the last real token), so which id fills it never changes a result."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise TetherInputError(f"{where}: the tokenizer has neither a pad token nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def context_length(model: PreTrainedModel) -> int:
    """Longest sequence the model takes; config names differ between architectures."""
    config = model.config
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return 2048


def chat_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> str:
    """The prompt as a chat model sees it: the tokenizer's chat template with a generation prompt.

    Tokenizers without a template (base models) get the prompt and a blank line, so a response
    never runs straight on from the prompt's last word."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
        return str(text)
    return f"{prompt}\n\n"


def prompt_ids(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> list[list[int]]:
    """Token ids of each prompt as the model sees it (`chat_prompt`); the response follows them."""
    encoded = tokenizer([chat_prompt(tokenizer, p) for p in prompts], add_special_tokens=False)
    return [list(ids) for ids in encoded["input_ids"]]


def scored_text(tokenizer: PreTrainedTokenizerBase, prompt: str, response: str) -> str:
    """What a reward model reads for one (prompt, response): the chat prompt, the response and EOS.

    Training, evaluation, probes and RL all score through this one function, so a reward model is
    never read with a different layout from the one it was trained on. The closing EOS gives the
    scalar head the same final token to read from on every sequence."""
    eos = tokenizer.eos_token or ""
    return f"{chat_prompt(tokenizer, prompt)}{response}{eos}"
