"""The models of an RL run: the policy, its frozen SFT reference, and (PPO) the critic.

Full fine-tuning (the default) loads them as below; with LoRA (`rl.lora`, `--lora`) one copy of the
SFT weights is the policy's frozen base and, with the adapter switched off, the reference, and the
PPO critic is a value head on the policy (`tether.rl.lora`, `build_lora_models`).

- policy: `AutoModelForCausalLM` from the SFT checkpoint (or an RL checkpoint, when resuming);
- reference: a second, frozen copy loaded from the SFT checkpoint; the KL penalty is against it;
- critic (PPO only): `AutoModelForSequenceClassification(num_labels=1)` read at EVERY position instead
  of the last one, so its score head gives one value per token. With ``value_init="reward_model"``
  it starts as the reward model itself (backbone and head), the classic recipe (Ziegler et al. 2019;
  Secrets of RLHF/PPO-max): its value at the last token is then the RM score from step 0. That needs
  the reward model to share the policy's vocabulary, since the critic reads the policy's token ids.
  ``value_init="policy"`` starts from the SFT backbone with a fresh head instead.

Policy and critic sit in one `PolicyAndValue` module (as TRL does), so one optimizer and one
`accelerator.prepare` cover both. Dropout is switched off everywhere: with it, the log-probabilities
of the rollout and of the update would be read through different masks (TRL does the same).
GPT-2's "gelu_new" activation runs as torch's fused kernel (`fuse_gelu`). Weights load from
safetensors only.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from tether.errors import TetherInputError
from tether.hf import load_causal_lm, quiet_transformers, require_safetensors
from tether.rl.config import LoraSettings
from tether.rl.logprobs import entropy_from_logits, token_logprobs
from tether.rl.prefix import accepts_logits_to_keep, prompt_groups, shared_response_logits
from tether.rl.rollout import RolloutBatch

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class PolicyAndValue(torch.nn.Module):
    """The trainable pair: a causal LM and an optional per-token critic."""

    def __init__(self, policy: PreTrainedModel, critic: torch.nn.Module | None) -> None:
        super().__init__()
        self.policy = policy
        self.critic = critic

    def forward(self, batch: RolloutBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(response logits (B, R, V) unscaled, response values (B, R) or None)."""
        logits = response_logits(self.policy, batch)
        values = response_values(self.critic, batch) if self.critic is not None else None
        return logits, values


def response_logits(model: torch.nn.Module, batch: RolloutBatch) -> torch.Tensor:
    """Logits that produced each response token: those at columns P−1 … P+R−2. -> (B, R, V).

    Explicit position ids: see `tether.rl.rollout` for why left padding needs them. A prompt that
    several rows share runs once (`tether.rl.prefix`); otherwise only the last R + 1 columns go
    through the LM head (`logits_to_keep`, as TRL does), since the prompt's logits are never read."""
    p = batch.prompt_width
    groups = prompt_groups(batch.sequences[:, :p], batch.attention_mask[:, :p])
    if groups is not None:
        return shared_response_logits(model, batch, groups)
    keep = batch.sequences.shape[1] - p + 1  # R + 1
    extra = {"logits_to_keep": keep} if accepts_logits_to_keep(model) else {}
    out = model(
        input_ids=batch.sequences,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        use_cache=False,
        **extra,
    )
    return out.logits[:, -keep:-1]  # (B, R + 1 or P + R, V) -> (B, R, V)


def response_values(critic: Any, batch: RolloutBatch) -> torch.Tensor:
    """The critic's value of the state before each response token (columns P−1 … P+R−2). -> (B, R)."""
    backbone = critic.base_model  # the transformer under the classification head
    hidden = backbone(
        input_ids=batch.sequences,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        use_cache=False,
    ).last_hidden_state  # (B, P + R, H)
    values = critic.score(hidden).squeeze(-1)  # (B, P + R)
    p = batch.prompt_width
    return values[:, p - 1 : -1].float()  # (B, R)


def logprobs_and_entropy(
    model: torch.nn.Module, batch: RolloutBatch, temperature: float, *, entropy: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Temperature-scaled per-token log-probabilities (B, R) and, if asked, entropies (B, R).

    Scaled by the sampling temperature so they are the log-probabilities of the distribution the
    tokens were actually drawn from (TRL does the same)."""
    logits = response_logits(model, batch) / temperature  # (B, R, V)
    logp = token_logprobs(logits, batch.response_ids)  # (B, R)
    return logp, entropy_from_logits(logits) if entropy else None


def fuse_gelu(model: torch.nn.Module) -> int:
    """Swap transformers' `NewGELUActivation` ("gelu_new": GPT-2, GPT-J, Phi-2…), written as seven
    tensor ops, for torch's one-kernel `GELU(approximate="tanh")`, the same formula; returns how many.

    transformers documents the two as equal up to rounding (5e-7 apart on N(0, 5²) inputs). Measured
    on the sandbox RLOO step, one thread: 10 ms of ~110 saved (forward, backward and generation).
    The checkpoint's config and weights are untouched: an activation has no parameters."""
    from transformers.activations import NewGELUActivation

    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is NewGELUActivation:
                setattr(parent, name, torch.nn.GELU(approximate="tanh"))
                swapped += 1
    return swapped


def disable_dropout(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


@dataclass
class RLModels:
    trainable: PolicyAndValue
    reference: PreTrainedModel
    """A frozen copy of the SFT policy, or with LoRA the policy itself (read under `reference_off`)."""
    tokenizer: PreTrainedTokenizerBase
    reference_off: Callable[[], AbstractContextManager[Any]] = nullcontext
    """Entered around every use of `reference`: switches the LoRA adapter off; nothing otherwise."""
    adapter: Any | None = None
    """The `PeftModel` around the policy when it trains a LoRA adapter, else None."""

    def merged_policy_state(self) -> dict[str, torch.Tensor] | None:
        """With LoRA, the policy's weights with the adapter merged in, what a checkpoint's top level
        holds; None in full fine-tuning, where the live weights are saved as they are."""
        if self.adapter is None:
            return None
        from tether.rl.lora import merged_state_dict

        return merged_state_dict(self.adapter)


def load_policy(path: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A causal LM and its tokenizer; a tokenizer without a pad token pads with EOS."""
    model, tokenizer = load_causal_lm(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    disable_dropout(model)
    fuse_gelu(model)
    return model, tokenizer


def load_critic(path: Path, *, fresh_head_seed: int | None = None) -> PreTrainedModel:
    """A one-label sequence classifier used as a per-token critic. `fresh_head_seed` set: the head is new
    (initialized under that seed), as when starting from the SFT policy."""
    from transformers import AutoModelForSequenceClassification

    require_safetensors(path)
    quiet_transformers()
    if fresh_head_seed is not None:
        torch.manual_seed(fresh_head_seed)
    critic: PreTrainedModel = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=1, use_safetensors=True
    )
    if not hasattr(critic, "score"):
        raise TetherInputError(
            f"{path}: {type(critic).__name__} has no `score` head; use --value-init policy or a decoder RM"
        )
    disable_dropout(critic)
    fuse_gelu(critic)
    return critic


def check_same_vocabulary(policy_tok: PreTrainedTokenizerBase, rm_path: Path) -> None:
    """The critic reads the policy's token ids, so a critic from the RM needs the RM's vocabulary to match."""
    from transformers import AutoTokenizer

    rm_tok = AutoTokenizer.from_pretrained(rm_path)
    if rm_tok.get_vocab() != policy_tok.get_vocab():
        raise TetherInputError(
            f"{rm_path}: the reward model's vocabulary differs from the policy's, so a critic initialized "
            "from it cannot read the policy's tokens; train the RM from the SFT or use --value-init policy"
        )


def build_models(
    sft_path: Path,
    *,
    policy_path: Path | None,
    critic_path: Path | None,
    critic_from_rm: Path | None,
    value_init: str,
    seed: int,
    lora: LoraSettings | None = None,
) -> RLModels:
    """Policy (from `policy_path`, default the SFT checkpoint), reference and critic.

    The critic comes from `critic_path` when resuming, else from the RM (`critic_from_rm`) or the SFT
    policy per `value_init`; None for RLOO (both paths None and value_init ignored). With `lora`, see
    `build_lora_models`."""
    if lora is not None:
        ppo = critic_path is not None or critic_from_rm is not None
        return build_lora_models(sft_path, lora, policy_path=policy_path, critic_path=critic_path, ppo=ppo)
    policy, tokenizer = load_policy(policy_path or sft_path)
    reference, _ = load_policy(sft_path)
    reference.requires_grad_(False)
    critic = None
    if critic_path is not None:
        critic = load_critic(critic_path)
    elif critic_from_rm is not None:
        if value_init == "reward_model":
            check_same_vocabulary(tokenizer, critic_from_rm)
            critic = load_critic(critic_from_rm)
        else:
            critic = load_critic(sft_path, fresh_head_seed=seed)
    if critic is not None and critic.config.pad_token_id is None:
        critic.config.pad_token_id = tokenizer.pad_token_id
    return RLModels(PolicyAndValue(policy, critic), reference, tokenizer)


def build_lora_models(
    sft_path: Path, lora: LoraSettings, *, policy_path: Path | None, critic_path: Path | None, ppo: bool
) -> RLModels:
    """The SFT policy loaded once, with a LoRA adapter: fresh, or the one saved in the checkpoint at
    `policy_path` (resume or warm start). Its base with the adapter off is the reference; PPO's
    critic is a value head on it (zero at first, or read from `critic_path`)."""
    from tether.rl.checkpoint import ADAPTER_DIR
    from tether.rl.lora import PolicyValueHead, attach_adapter, check_adapter, load_adapter

    base, tokenizer = load_policy(sft_path)
    if policy_path is None:
        adapter = attach_adapter(base, lora)
    else:
        check_adapter(policy_path / ADAPTER_DIR, lora)
        adapter = load_adapter(base, policy_path / ADAPTER_DIR)
    policy = adapter.get_base_model()  # the transformers model itself, LoRA layers injected
    critic = PolicyValueHead(policy) if ppo else None
    if critic is not None and critic_path is not None:
        critic.load(critic_path)
    return RLModels(PolicyAndValue(policy, critic), policy, tokenizer, adapter.disable_adapter, adapter)
