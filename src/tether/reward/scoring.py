"""Load a reward checkpoint and score (prompt, response) pairs with it.

Evaluation, probes and the RL stage all score through `RewardModel.score`, which reads each pair
through `tether.hf.scored_text`, the layout training used. Batches are sorted by length and padded
on the right to their longest sequence: right, because GPT-2-style models number positions from
the first slot whatever the attention mask says, so left padding would shift every position and
change the score; the sequence-classification head reads the last non-pad token either way.

    model = load_reward_model(Path(".tether/models/rm-seed0"))
    model.score(["what is 2 plus 2 ?"], ["the answer is 4 ."])   # array([0.83], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from tether.conversation import Prompt
from tether.errors import TetherInputError
from tether.hf import ScoredLayout, ensure_pad_token, quiet_transformers, reply_closing, require_safetensors

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class Scorer(Protocol):
    """Anything that gives one scalar reward per (prompt, response): a reward model, or a test stub."""

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Rewards, shape (N,), in input order."""
        ...


@dataclass
class RewardModel:
    """A scalar reward model (a sequence classifier with one label) and its tokenizer, in eval mode."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    path: Path
    max_length: int
    """Longest sequence the model can read: a longer conversation loses whole turns from the oldest
    (`tether.hf.trimmed_turns`), and a text still too long keeps its last max_length tokens."""
    closing: str = ""
    """What follows each reply in the scored text: the closing the model was trained with."""
    system_prompt: str | None = None
    """The system prompt the model was trained with, for conversations without their own."""

    @property
    def device(self) -> str:
        return str(next(self.model.parameters()).device)

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """One reward per (prompt, response), shape (N,), float32, in input order."""
        import torch

        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        ids = self.encode(prompts, responses)
        # Longest first: similar lengths share a batch, so padding stays small; the first batch is the
        # widest, so running out of memory happens at once rather than at the end.
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out = np.empty(len(ids), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                out[chunk] = self._forward([ids[i] for i in chunk])
        return out

    def encode(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[list[int]]:
        """Token ids of each scored text: conversations cut by whole turns to max_length, and what is
        still longer cut from the left (the end carries the closing the head reads)."""
        layout = ScoredLayout(self.tokenizer, self.system_prompt, self.closing)
        ids = layout.ids(prompts, responses)
        for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
            if len(ids[i]) > self.max_length:
                ids[i] = layout.fitted(prompt, [response], self.max_length)[1][0]
        return [seq[-self.max_length :] for seq in ids]

    def _forward(self, sequences: list[list[int]]) -> np.ndarray:
        import torch

        pad_id = int(self.model.config.pad_token_id)
        width = max(len(seq) for seq in sequences)
        input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)  # (B, T)
        attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)  # (B, T)
        for row, seq in enumerate(sequences):
            input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            attention_mask[row, : len(seq)] = 1
        device = self.model.device
        logits = self.model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits
        return logits[:, 0].float().cpu().numpy()  # (B, 1) -> (B,)


def load_reward_model(path: Path, *, device: str | None = None) -> RewardModel:
    """The reward checkpoint at `path`: safetensors weights only, never unpickled, in eval mode.

    `device` defaults to CUDA when available. Raises TetherInputError for a directory without
    safetensors weights or a model that is not a one-label sequence classifier with a pad token.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    require_safetensors(path)
    quiet_transformers()
    tokenizer = ensure_pad_token(AutoTokenizer.from_pretrained(path), where=str(path))
    model = AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True)
    if model.config.num_labels != 1:
        raise TetherInputError(
            f"{path}: a reward model has one output (num_labels=1), this one has {model.config.num_labels}"
        )
    if model.config.pad_token_id is None:
        # Without it the head cannot find each row's last token in a padded batch.
        model.config.pad_token_id = tokenizer.pad_token_id
    if model.config.pad_token_id is None:
        raise TetherInputError(f"{path}: neither the model config nor the tokenizer defines a pad token")
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.eval()
    closing, system = trained_layout(path, tokenizer)
    return RewardModel(model, tokenizer, path, _max_length(model, tokenizer), closing, system)


def trained_layout(path: Path, tokenizer: PreTrainedTokenizerBase) -> tuple[str, str | None]:
    """(closing, system prompt) the reward model at ``path`` was trained with, from its
    tether_reward.json: a model trained before conversations (no ``text_closing``) read replies
    followed by EOS and had no system prompt. A model Tether did not train is read with the closing
    its tokenizer's chat template gives (`tether.hf.reply_closing`)."""
    import json

    meta_file = path / "tether_reward.json"
    if not meta_file.is_file():
        return reply_closing(tokenizer), None
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    closing = meta.get("text_closing")
    system = meta.get("system_prompt")
    return (closing if isinstance(closing, str) else tokenizer.eos_token or ""), (
        system if isinstance(system, str) else None
    )


def _max_length(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int:
    limits = [getattr(model.config, name, None) for name in ("max_position_embeddings", "n_positions")] + [
        getattr(tokenizer, "model_max_length", None)
    ]
    # Tokenizers without a limit report a huge sentinel (1e30); the model's own limit wins then.
    usable = [int(n) for n in limits if isinstance(n, int) and 0 < n < 1_000_000]
    return min(usable) if usable else 2048
