"""The reward model: a language model with a scalar head, read at the last real token.

Built as `AutoModelForSequenceClassification(num_labels=1)` on the base checkpoint (by default the
project's SFT policy, as in InstructGPT), so any Hugging Face decoder works and the saved
checkpoint loads with the same class. Weights are read from safetensors only.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from tether.hf import ensure_pad_token, quiet_transformers, require_safetensors
from tether.reward.config import RewardTrainConfig
from tether.reward.data import EncodedPair, PairCollator
from tether.reward.loss import bradley_terry_loss, pair_accuracy

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def load_reward_base(base: Path, *, seed: int) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(model with a fresh scalar head, tokenizer) from the checkpoint directory `base`.

    The head is initialized under `seed`. Tokenizers without a pad token (GPT-2) pad with EOS;
    the model's `pad_token_id` is set from the tokenizer, so the head reads each row's last
    non-padding token."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    require_safetensors(base)
    quiet_transformers()
    tokenizer = ensure_pad_token(AutoTokenizer.from_pretrained(base), where=str(base))
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, use_safetensors=True)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def with_lora(model: PreTrainedModel, cfg: RewardTrainConfig) -> Any:
    """`model` wrapped in LoRA adapters (peft's default target modules for its architecture).

    The score head is new, so it stays fully trainable (modules_to_save); everything else is frozen."""
    from peft import LoraConfig, TaskType, get_peft_model

    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        modules_to_save=["score"],
        # GPT-2 stores its projections as Conv1D, whose weight is transposed.
        fan_in_fan_out=getattr(model.config, "model_type", "") == "gpt2",
    )
    with warnings.catch_warnings():
        # peft 0.21 reads transformers' deprecated `is_gradient_checkpointing`; nothing for us to change.
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
        return get_peft_model(model, lora)


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def rewards(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """One scalar reward per row of a packed batch: (2B, T) ids -> (2B,)."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
    return out.logits.squeeze(-1)  # (2B, 1) -> (2B,)


def plain_model(model: Any) -> PreTrainedModel:
    """The model to save: LoRA adapters merged into the weights, so loaders need no peft."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        merged: PreTrainedModel = model.merge_and_unload()
        return merged
    return model


def save_reward_model(
    model: Any, tokenizer: PreTrainedTokenizerBase, out: Path, *, state_dict: dict[str, Any] | None = None
) -> None:
    """save_pretrained with safetensors (LoRA merged) and the tokenizer, into `out`; `state_dict`, when
    given, holds the full weights a sharded run gathered (`Accelerator.get_state_dict`)."""
    out.mkdir(parents=True, exist_ok=True)
    plain_model(model).save_pretrained(out, safe_serialization=True, state_dict=state_dict)
    tokenizer.save_pretrained(out)


def heldout_metrics(
    model: torch.nn.Module, pairs: Sequence[EncodedPair], *, pad_id: int, batch_size: int
) -> dict[str, float]:
    """test/accuracy and test/loss (no margin, no centering) on held-out pairs; {} when there are none."""
    if not pairs:
        return {}
    r_chosen, r_rejected = score_pairs(model, pairs, pad_id=pad_id, batch_size=batch_size)
    return {
        "test/accuracy": pair_accuracy(r_chosen, r_rejected).item(),
        "test/loss": bradley_terry_loss(r_chosen, r_rejected).item(),
        "test/pairs": float(len(pairs)),
    }


@torch.no_grad()
def score_pairs(
    model: torch.nn.Module, pairs: Sequence[EncodedPair], *, pad_id: int, batch_size: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """(r_chosen, r_rejected), each (N,) in input order, in eval mode; batches sorted by length."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(pairs)), key=lambda i: pairs[i].length)
    collate = PairCollator(pad_id)
    r_chosen = torch.empty(len(pairs))
    r_rejected = torch.empty(len(pairs))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = {k: v.to(device) for k, v in collate([pairs[i] for i in chunk]).items()}
        chosen, rejected = rewards(model, batch).float().cpu().chunk(2)  # (B,), (B,)
        r_chosen[chunk], r_rejected[chunk] = chosen, rejected
    model.train(was_training)
    return r_chosen, r_rejected


def disable_dropout(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
