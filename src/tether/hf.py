"""Loading Hugging Face models and tokenizers from local paths, safetensors only.

Every stage loads models through here, the sandbox's tiny policy included, so the sandbox
exercises exactly the code path a real model takes. Pickled checkpoints are refused: loading
one can run arbitrary code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tether.conversation import Prompt, as_dicts, essential, fallback_layout, with_system
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


def chat_prompt(tokenizer: PreTrainedTokenizerBase, prompt: Prompt, *, system: str | None = None) -> str:
    """The prompt as a chat model sees it: the tokenizer's chat template with a generation prompt.

    ``prompt`` is a string (one user message) or a conversation (`tether.conversation`); ``system``
    is the project's system prompt, used when the conversation has none. Tokenizers without a
    template (base models) get `tether.conversation.fallback_layout`: a lone user message is its
    text and a blank line, so a response never runs straight on from the prompt's last word."""
    conv = with_system(prompt, system)
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(as_dicts(conv), add_generation_prompt=True, tokenize=False)
        return str(text)
    return fallback_layout(conv)


def prompt_ids(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[Prompt], *, system: str | None = None
) -> list[list[int]]:
    """Token ids of each prompt as the model sees it (`chat_prompt`); the response follows them."""
    texts = [chat_prompt(tokenizer, p, system=system) for p in prompts]
    encoded = tokenizer(texts, add_special_tokens=False)
    return [list(ids) for ids in encoded["input_ids"]]


def trimmed_turns(prompt: Prompt, fits: Callable[[Prompt], bool]) -> Prompt | None:
    """``prompt`` itself when it fits, else the longest version cut by whole turns from the oldest
    (user/assistant exchanges), always keeping a system message and the last user turn; None when
    even that does not fit. A string has nothing to cut."""
    if fits(prompt):
        return prompt
    if isinstance(prompt, str):
        return None
    head = prompt[:1] if prompt[0].role == "system" else ()
    turns = prompt[len(head) :]
    for cut in range(2, len(turns), 2):  # drop one user/assistant exchange at a time
        shorter = (*head, *turns[cut:])
        if fits(shorter):
            return shorter
    return None


def reply_closing(tokenizer: PreTrainedTokenizerBase) -> str:
    """What follows a reply in the text a reward model reads.

    Where the chat template renders an assistant turn as its generation prompt, the reply, then a
    closing that does not depend on the reply (ChatML: ``<|im_end|>\n``), that closing: the scored
    text is then exactly ``apply_chat_template(conversation + [reply])``. Otherwise (no template, or
    one that renders a finished turn differently, like the sandbox's) EOS. Probed once with a
    one-word reply; every sequence ends the same way, so the scalar head reads the same final token."""
    eos = tokenizer.eos_token or ""
    if not getattr(tokenizer, "chat_template", None):
        return eos
    probe, reply = [{"role": "user", "content": "Hi"}], "Hello"
    head = str(tokenizer.apply_chat_template(probe, add_generation_prompt=True, tokenize=False))
    full = str(
        tokenizer.apply_chat_template([*probe, {"role": "assistant", "content": reply}], tokenize=False)
    )
    if full.startswith(head + reply) and len(full) > len(head + reply):
        return full[len(head + reply) :]
    return eos


def scored_text(
    tokenizer: PreTrainedTokenizerBase,
    prompt: Prompt,
    response: str,
    *,
    system: str | None = None,
    closing: str | None = None,
) -> str:
    """What a reward model reads for one (prompt, response): the chat prompt, the response and the
    closing (`reply_closing`; a reward model passes the one it was trained with).

    Training, evaluation, probes and RL all score through this one function, so a reward model is
    never read with a different layout from the one it was trained on."""
    end = reply_closing(tokenizer) if closing is None else closing
    return f"{chat_prompt(tokenizer, prompt, system=system)}{response}{end}"


@dataclass(frozen=True)
class ScoredLayout:
    """How one reward model reads (prompt, reply): `scored_text` with its system prompt and closing,
    tokenized without added special tokens (the text holds every one the model should see)."""

    tokenizer: PreTrainedTokenizerBase
    system: str | None
    closing: str

    @classmethod
    def for_tokenizer(cls, tokenizer: PreTrainedTokenizerBase, system: str | None = None) -> ScoredLayout:
        """The layout a new reward model on this tokenizer trains with (`reply_closing`)."""
        return cls(tokenizer, system, reply_closing(tokenizer))

    def ids(self, prompts: Sequence[Prompt], replies: Sequence[str]) -> list[list[int]]:
        """Token ids of each (prompt, reply), tokenized as one batch."""
        texts = [
            scored_text(self.tokenizer, p, r, system=self.system, closing=self.closing)
            for p, r in zip(prompts, replies, strict=True)
        ]
        return (
            [list(seq) for seq in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
            if texts
            else []
        )

    def fitted(
        self, prompt: Prompt, replies: Sequence[str], max_length: int
    ) -> tuple[Prompt, list[list[int]]]:
        """(prompt, ids of it with each reply): a conversation whose longest reply overruns max_length
        is cut by whole turns (`trimmed_turns`) until every reply fits, or left at its shortest."""
        ids = self.ids([prompt] * len(replies), replies)
        if max(map(len, ids)) <= max_length or isinstance(prompt, str) or len(prompt) == 1:
            return prompt, ids

        def fits(p: Prompt) -> bool:
            return max(map(len, self.ids([p] * len(replies), replies))) <= max_length

        cut = trimmed_turns(prompt, fits) or essential(prompt)
        return cut, self.ids([cut] * len(replies), replies)
