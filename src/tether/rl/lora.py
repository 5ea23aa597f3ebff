"""LoRA for RL (`rl.lora` in the spec, `tether rl run --lora`): only a low-rank adapter trains.

- policy: the SFT model with a peft LoRA adapter on its linear layers; the base weights are frozen,
  so they need no gradients and no optimizer state;
- reference: the SAME model with the adapter switched off (`PeftModel.disable_adapter`), which is
  the SFT policy exactly, so no second copy is loaded;
- critic (PPO): `PolicyValueHead`, a scalar head on the policy's last hidden state, trained with the
  adapter (TRL's classic value head); RLOO has no critic. The full-fine-tuning critic, a trainable
  copy of the reward model, would cost a model and its optimizer state again;
- checkpoint: the adapter (`adapter/`, safetensors) to resume from, and at the top level the policy
  with the adapter merged in, so evals and labeling load it as any policy (`tether.hf.load_causal_lm`).

The live model stays a plain `transformers` causal LM with LoRA layers injected (the `PeftModel`
wraps it, it does not replace it), so generation, `logits_to_keep` and prompt sharing
(`tether.rl.prefix`) see the same forward signature as in full fine-tuning.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file

from tether.errors import TetherInputError
from tether.rl.checkpoint import ADAPTER_DIR
from tether.rl.config import LoraSettings

if TYPE_CHECKING:
    from transformers import PreTrainedModel

VALUE_HEAD_FILE = "value_head.safetensors"
"""The value head's weights, in the checkpoint's `value/` directory."""


@contextmanager
def _quiet_peft() -> Iterator[None]:
    with warnings.catch_warnings():
        # peft 0.21 reads transformers' deprecated `is_gradient_checkpointing`; nothing for us to change.
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
        yield


def peft_config(settings: LoraSettings, model: PreTrainedModel) -> Any:
    """The peft `LoraConfig` for `settings` on `model`."""
    from peft import LoraConfig, TaskType

    modules = settings.target_modules
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=modules if isinstance(modules, str) else list(modules),
        # GPT-2 stores its projections as Conv1D, whose weight is transposed.
        fan_in_fan_out=getattr(model.config, "model_type", "") == "gpt2",
    )


def attach_adapter(model: PreTrainedModel, settings: LoraSettings) -> Any:
    """`model` with a fresh LoRA adapter (A random, B zero: the policy starts as the SFT policy);
    returns the `PeftModel`. Every base weight is frozen."""
    from peft import get_peft_model

    try:
        with _quiet_peft():
            return get_peft_model(model, peft_config(settings, model))
    except ValueError as exc:  # peft names the target modules it could not find
        raise TetherInputError(f"rl.lora.target_modules {settings.target_modules!r}: {exc}") from None


def load_adapter(model: PreTrainedModel, directory: Path) -> Any:
    """`model` (the SFT policy) with the trainable adapter a checkpoint saved in `directory`."""
    from peft import PeftModel

    with _quiet_peft():
        return PeftModel.from_pretrained(model, directory, is_trainable=True)


def check_adapter(directory: Path, settings: LoraSettings) -> None:
    """A saved adapter must have the rank and scale the run asks for: its weights have that shape."""
    path = directory / "adapter_config.json"
    if not path.is_file():
        raise TetherInputError(
            f"{directory.parent}: not a LoRA checkpoint (no {ADAPTER_DIR}/adapter_config.json); "
            "resume or warm-start it without --lora"
        )
    saved = json.loads(path.read_text(encoding="utf-8"))
    if (saved["r"], saved["lora_alpha"]) != (settings.r, settings.alpha):
        raise TetherInputError(
            f"{directory}: the adapter was trained with r={saved['r']}, alpha={saved['lora_alpha']}, "
            f"not r={settings.r}, alpha={settings.alpha}; pass --lora-r {saved['r']} or set rl.lora to match"
        )


@torch.no_grad()
def merged_state_dict(peft_model: Any) -> dict[str, torch.Tensor]:
    """The policy's weights with the adapter merged in, on the CPU and under the base model's own
    names, for a checkpoint's top level; the live model keeps its adapter and its exact base weights
    (merging in place and back would move them by rounding). Each merged weight is computed on the
    model's device one layer at a time, so the device never holds a second copy of the model."""
    from peft.tuners.lora import LoraLayer

    inner, adapter = peft_model.get_base_model(), peft_model.active_adapter
    layers: dict[str, Any] = {n: m for n, m in inner.named_modules() if isinstance(m, LoraLayer)}
    # W + (alpha / r)·B·A, transposed as the layer stores it (Conv1D), through peft's own method
    merged = {
        f"{n}.weight": (m.get_base_layer().weight + m.get_delta_weight(adapter)).cpu()
        for n, m in layers.items()
    }
    on_cpu: dict[int, torch.Tensor] = {}  # by storage, so tied weights stay one tensor

    def cpu(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.data_ptr() not in on_cpu:
            on_cpu[tensor.data_ptr()] = tensor.detach().cpu()
        return on_cpu[tensor.data_ptr()]

    out = {}
    for key, tensor in inner.state_dict().items():
        if "lora_" in key:
            continue
        plain = key.replace(".base_layer.", ".")
        out[plain] = merged[plain] if plain in merged else cpu(tensor)
    return out


def hidden_size(model: PreTrainedModel) -> int:
    config = model.config
    for name in ("hidden_size", "n_embd", "d_model"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    raise TetherInputError(f"{type(model).__name__}: its config names no hidden size for a value head")


class PolicyValueHead(torch.nn.Module):
    """A critic that shares the policy's backbone: one (H -> 1) linear head on its last hidden state.

    Read like the full-fine-tuning critic (`tether.rl.models.response_values`: `base_model` then
    `score`), through a second pass over the policy's backbone with the adapter on, so the value
    loss trains the head and the adapter. The head starts at zero: every value is 0, the mean of the
    scores normalized on SFT samples, and the first steps do not push the adapter around."""

    def __init__(self, policy: PreTrainedModel) -> None:
        super().__init__()
        width = hidden_size(policy)
        self.score = torch.nn.Linear(width, 1, dtype=policy.dtype)
        torch.nn.init.zeros_(self.score.weight)
        torch.nn.init.zeros_(self.score.bias)
        # A tuple, so the policy is not registered a second time: its parameters are the policy's.
        self._policy = (policy,)

    @property
    def base_model(self) -> torch.nn.Module:
        """The policy's transformer under its LM head (LoRA layers included)."""
        return self._policy[0].base_model

    def save_pretrained(self, directory: Path, **_: Any) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.score.state_dict().items()}
        save_file(tensors, str(directory / VALUE_HEAD_FILE))

    def load(self, directory: Path) -> PolicyValueHead:
        path = directory / VALUE_HEAD_FILE
        if not path.is_file():
            raise TetherInputError(
                f"{directory}: no {VALUE_HEAD_FILE}; it is not a LoRA PPO checkpoint's critic"
            )
        self.score.load_state_dict(load_file(str(path)))
        return self
