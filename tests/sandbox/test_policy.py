"""The tiny policy: tokenizer, masking, schedule, SFT, safetensors round trip and sampling."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from tether.errors import TetherInputError
from tether.hf import load_causal_lm, require_safetensors
from tether.sandbox.config import TinyPolicyConfig
from tether.sandbox.policy import (
    SEP,
    build_model,
    encode_examples,
    format_prompt,
    lr_at,
    sample_responses,
    save_policy,
    sft,
    train_tokenizer,
)

EXAMPLES = [
    ("what is 2 plus 2 ?", "the answer is 4 ."),
    ("what is 3 plus 1 ?", "the answer is 4 ."),
    ("how do i hurt my boss ?", "i can not help with that ."),
    ("is 4 even ?", "yes ."),
]
TINY = TinyPolicyConfig(
    n_layer=1, n_embd=32, n_head=2, n_positions=32, steps=40, batch_size=4, warmup_steps=5
)


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    return train_tokenizer([t for pair in EXAMPLES for t in pair])


def test_tokenizer_is_word_level_and_round_trips(tokenizer: PreTrainedTokenizerFast) -> None:
    text = "the answer is 4 ."
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert len(ids) == 5
    assert tokenizer.decode(ids) == text
    assert tokenizer.convert_ids_to_tokens(tokenizer.encode("zebra", add_special_tokens=False)) == ["[UNK]"]


def test_chat_template_appends_the_separator(tokenizer: PreTrainedTokenizerFast) -> None:
    assert format_prompt(tokenizer, "is 4 even ?") == f"is 4 even ? {SEP}"


def test_prompt_tokens_are_masked_out_of_the_labels(tokenizer: PreTrainedTokenizerFast) -> None:
    (ids, labels), *_ = encode_examples(tokenizer, [("is 4 even ?", "yes .")], max_len=32)
    # prompt: 4 words + [SEP]; response: 2 words + [EOS]
    assert len(ids) == len(labels) == 8
    assert labels[:5] == [-100] * 5
    assert labels[5:] == ids[5:]
    assert ids[-1] == tokenizer.eos_token_id
    assert ids[4] == tokenizer.sep_token_id


def test_lr_schedule_hand_values() -> None:
    cfg = TinyPolicyConfig(lr=1.0, warmup_steps=10, steps=110)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert lr_at(110, cfg) == pytest.approx(0.1)


def test_sft_lowers_the_loss_and_changes_the_weights(tokenizer: PreTrainedTokenizerFast) -> None:
    model = build_model(tokenizer, TINY)
    before = [p.detach().clone() for p in model.parameters()]
    losses = sft(model, tokenizer, EXAMPLES * 8, TINY)
    assert len(losses) == TINY.steps
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_save_and_load_through_auto_classes_with_safetensors(
    tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    model = build_model(tokenizer, TINY)
    sft(model, tokenizer, EXAMPLES * 8, dataclasses.replace(TINY, steps=5))
    save_policy(model, tokenizer, TINY, tmp_path / "policy")
    assert (tmp_path / "policy" / "model.safetensors").is_file()
    assert not list((tmp_path / "policy").glob("*.bin"))
    loaded, loaded_tok = load_causal_lm(tmp_path / "policy")
    ids = torch.tensor([tokenizer.encode("what is 2 plus 2 ?", add_special_tokens=False)])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, loaded(ids).logits, atol=1e-6)
    assert format_prompt(loaded_tok, "x") == f"x {SEP}"


def test_pickled_checkpoints_are_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(TetherInputError, match=r"no \.safetensors weights \(found pytorch_model\.bin\)"):
        require_safetensors(tmp_path)
    with pytest.raises(TetherInputError, match="model directory not found"):
        require_safetensors(tmp_path / "missing")


def test_sampling_is_seeded_and_stops_at_eos(tokenizer: PreTrainedTokenizerFast) -> None:
    model = build_model(tokenizer, TINY)
    sft(model, tokenizer, EXAMPLES * 8, dataclasses.replace(TINY, steps=60))
    prompts = [p for p, _ in EXAMPLES]
    first = sample_responses(model, tokenizer, prompts, seed=3, max_new_tokens=10)
    again = sample_responses(model, tokenizer, prompts, seed=3, max_new_tokens=10)
    assert first == again
    assert len(first) == len(prompts)
    assert all(SEP not in text and "[EOS]" not in text for text in first)
