"""The RL models' loading: GPT-2's activation runs as one fused kernel with unchanged outputs."""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.activations import NewGELUActivation

from tether.rl.models import fuse_gelu


def test_fuse_gelu_swaps_every_gpt2_activation_and_keeps_the_logits() -> None:
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=32, n_layer=3, n_head=2))
    model.eval()
    ids = torch.randint(0, 50, (4, 12))
    with torch.no_grad():
        before = model(input_ids=ids).logits  # (4, 12, 50)
    assert fuse_gelu(model) == 3  # one per block
    assert not any(isinstance(m, NewGELUActivation) for m in model.modules())
    with torch.no_grad():
        after = model(input_ids=ids).logits
    assert torch.allclose(after, before, atol=1e-5)
    assert fuse_gelu(model) == 0  # nothing left to swap; weights and config untouched
    assert model.config.activation_function == "gelu_new"


def test_fuse_gelu_leaves_other_activations_alone() -> None:
    config = GPT2Config(vocab_size=50, n_positions=16, n_embd=32, n_layer=2, n_head=2)
    config.activation_function = "relu"
    assert fuse_gelu(GPT2LMHeadModel(config)) == 0
