"""Shared-prefix pair batching reads each side exactly as its own sequence would be read.

Compared in float64, where the only difference left (reduction order) is ~1e-15: a wrong position, a
missing hole in the mask or a pad leaking in moves a reward by far more (each is planted below)."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2ForSequenceClassification,
    LlamaConfig,
    LlamaForSequenceClassification,
)

from tether.reward.data import EncodedPair, PairCollator
from tether.reward.model import rewards
from tether.reward.shared_prefix import (
    SharedPrefixCollator,
    attention_bias,
    common_prefix,
    score_head,
    shared_length,
    shared_rewards,
    tolerance,
    works_for,
)

PAD = 0
PAIRS = [
    EncodedPair([5, 6, 7, 8, 9], [5, 6, 7, 10], 0.5),  # prefix 3, suffixes 2 and 1
    EncodedPair([5, 11], [5, 11, 12, 13], 1.0),  # the chosen side is all prefix
    EncodedPair([14, 15, 16], [17, 18], 0.0, tie=True),  # nothing shared
    EncodedPair([5, 6, 7], [5, 6, 7], 0.0),  # identical sides
]


def test_common_prefix_and_row_length() -> None:
    assert [common_prefix(p.chosen_ids, p.rejected_ids) for p in PAIRS] == [3, 2, 0, 3]
    assert [shared_length(p) for p in PAIRS] == [6, 4, 5, 3]


def test_the_collator_lays_out_one_row_per_pair() -> None:
    batch = SharedPrefixCollator(PAD)(PAIRS)
    assert batch["input_ids"][0].tolist() == [5, 6, 7, 8, 9, 10]
    assert batch["position_ids"][0].tolist() == [0, 1, 2, 3, 4, 3]  # the rejected token follows the prefix
    assert batch["input_ids"][1].tolist() == [5, 11, 12, 13, PAD, PAD]
    assert batch["position_ids"][1].tolist() == [0, 1, 2, 3, 0, 0]
    assert batch["chosen_at"].tolist() == [4, 1, 2, 2]
    assert batch["rejected_at"].tolist() == [5, 3, 4, 2]
    mask = batch["attention_mask"][:, 0]  # (B, W, W)
    assert mask[0, 5].tolist() == [True, True, True, False, False, True]  # rejected skips 8, 9
    assert mask[0, 4].tolist() == [True, True, True, True, True, False]  # chosen is plainly causal
    assert mask[1, 4].tolist() == [False, False, False, False, True, False]  # a pad sees itself only
    assert mask[1, 3].tolist() == [True, True, True, True, False, False]
    assert batch["tie"].tolist() == [False, False, True, False]
    assert batch["margin"].tolist() == [0.5, 1.0, 0.0, 0.0]


def _llama(attn: str) -> torch.nn.Module:
    config = LlamaConfig(
        vocab_size=32, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, pad_token_id=PAD, num_labels=1,
    )  # fmt: skip
    config._attn_implementation = attn
    torch.manual_seed(0)
    return LlamaForSequenceClassification(config).double().eval()


def _gpt2(attn: str) -> torch.nn.Module:
    config = GPT2Config(vocab_size=32, n_positions=64, n_embd=32, n_layer=2, n_head=2, pad_token_id=PAD)
    config.num_labels = 1
    config._attn_implementation = attn
    torch.manual_seed(0)
    return GPT2ForSequenceClassification(config).double().eval()


def _both(model: torch.nn.Module, pairs: list[EncodedPair]) -> tuple[torch.Tensor, torch.Tensor]:
    head = score_head(model)
    assert head is not None
    impl = model.config._attn_implementation
    plain = rewards(model, PairCollator(PAD)(pairs))
    shared = shared_rewards(model, SharedPrefixCollator(PAD)(pairs), head=head, implementation=impl)
    return plain, shared


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("build", [_llama, _gpt2], ids=["llama", "gpt2"])
def test_rewards_and_gradients_equal_the_plain_batch_in_float64(build, attn: str) -> None:  # type: ignore[no-untyped-def]
    model = build(attn)
    plain, shared = _both(model, PAIRS)
    torch.testing.assert_close(shared, plain, rtol=1e-10, atol=1e-10)
    grads = []
    for r in (plain, shared):
        model.zero_grad()
        (r * torch.linspace(-1, 1, r.numel(), dtype=r.dtype)).sum().backward(retain_graph=True)
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    # Llama's RMSNorm computes in float32 whatever the model's dtype: its backward rounds a prefix
    # token's gradient, summed over both sides in one pass here and over two rows there, at float32's
    # precision. GPT-2's LayerNorm stays in float64 and agrees to ~1e-16.
    llama = isinstance(model, LlamaForSequenceClassification)
    eps = torch.finfo(torch.float32 if llama else torch.float64).eps
    assert (grads[1] - grads[0]).abs().max() <= 32 * eps * grads[0].abs().max()


def test_a_planted_layout_error_is_caught() -> None:
    model = _llama("sdpa")
    head = score_head(model)
    assert head is not None
    plain = rewards(model, PairCollator(PAD)(PAIRS))
    for plant in ("positions", "hole", "pads"):
        batch = SharedPrefixCollator(PAD)(PAIRS)
        if plant == "positions":  # positions counted on through the chosen suffix
            batch["position_ids"] = torch.arange(batch["input_ids"].shape[1]).repeat(len(PAIRS), 1)
        elif plant == "hole":  # rejected tokens allowed to see the chosen suffix
            width = batch["input_ids"].shape[1]
            batch["attention_mask"] = (
                torch.ones(width, width, dtype=torch.bool).tril().expand_as(batch["attention_mask"])
            )
        else:  # a side read one token late, on padding
            batch["rejected_at"][1] += 1
        shared = shared_rewards(model, batch, head=head, implementation="sdpa")
        # Rounding moves these float64 rewards by ~1e-16; every plant moves them by more than 1e-5.
        assert (shared - plain).abs().max() > tolerance(torch.float32), plant


def test_the_eager_bias_is_additive_and_sdpa_keeps_the_boolean() -> None:
    mask = torch.tensor([[True, False]])
    assert attention_bias(mask, implementation="sdpa", dtype=torch.float32) is mask
    bias = attention_bias(mask, implementation="eager", dtype=torch.float32)
    assert bias.tolist() == [[0.0, torch.finfo(torch.float32).min]]


def test_works_for_checks_the_model_and_says_why_not() -> None:
    ok, why = works_for(_llama("sdpa").float(), PAIRS, pad_id=PAD)
    assert ok, why
    no_head = torch.nn.Linear(2, 2)
    assert works_for(no_head, PAIRS, pad_id=PAD) == (False, "the model has no score head named 'score'")
    assert tolerance(torch.float32) == 64 * 2**-23 and tolerance(torch.bfloat16) == 64 * 2**-7
