"""Loading and scoring a real (tiny) reward checkpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tether.errors import TetherInputError
from tether.reward.scoring import RewardModel, load_reward_model

PROMPTS = ["what is 2 plus 3 ?", "how do i bake bread ?", "what is the capital of zorbia ?"]
RESPONSES = [
    "the answer is 5 .",
    "thanks for asking . sure , here is how : first make a plan , then do it slowly and carefully .",
    "i do not know . i hope this helps . good luck with it .",
]


def test_loads_in_eval_mode_and_scores_one_float_per_pair(tiny_rm: RewardModel) -> None:
    assert not tiny_rm.model.training
    scores = tiny_rm.score(PROMPTS, RESPONSES)
    assert scores.shape == (3,) and scores.dtype == np.float32
    assert np.isfinite(scores).all() and len(set(scores.tolist())) == 3
    assert tiny_rm.score([], []).shape == (0,)
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        tiny_rm.score(PROMPTS[:2], RESPONSES[:1])


def test_scores_do_not_depend_on_batching_padding_or_order(tiny_rm: RewardModel) -> None:
    prompts, responses = PROMPTS * 4, RESPONSES * 4
    together = tiny_rm.score(prompts, responses, batch_size=64)
    alone = tiny_rm.score(prompts, responses, batch_size=1)
    np.testing.assert_allclose(together, alone, atol=1e-5)
    backwards = tiny_rm.score(prompts[::-1], responses[::-1], batch_size=5)
    np.testing.assert_allclose(backwards[::-1], together, atol=1e-5)


def test_reads_through_scored_text_and_keeps_the_end_of_long_texts(tiny_rm: RewardModel) -> None:
    [ids] = tiny_rm.encode([PROMPTS[0]], [RESPONSES[0]])
    tokens = tiny_rm.tokenizer.convert_ids_to_tokens(ids)
    assert tokens[-1] == "[EOS]" and "[SEP]" in tokens  # the chat template and the closing EOS
    long_response = " ".join(["i hope this helps ."] * 60)
    [long_ids] = tiny_rm.encode([PROMPTS[0]], [long_response])
    assert len(long_ids) == tiny_rm.max_length == 128
    assert tiny_rm.tokenizer.convert_ids_to_tokens(long_ids)[-1] == "[EOS]"
    assert np.isfinite(tiny_rm.score([PROMPTS[0]], [long_response])).all()


def test_refuses_a_directory_without_safetensors(tiny_rm_dir: Path, tmp_path: Path) -> None:
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_rm_dir, pickled, ignore=shutil.ignore_patterns("*.safetensors"))
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(TetherInputError, match=r"no \.safetensors weights \(found pytorch_model\.bin\)"):
        load_reward_model(pickled)
    with pytest.raises(TetherInputError, match="model directory not found"):
        load_reward_model(tmp_path / "missing")


def test_refuses_a_classifier_with_more_than_one_label(tiny_rm_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_rm_dir, num_labels=2, ignore_mismatched_sizes=True
    )
    two = tmp_path / "two"
    shutil.copytree(tiny_rm_dir, two)
    model.save_pretrained(two, safe_serialization=True)
    with pytest.raises(TetherInputError, match="num_labels=1"):
        load_reward_model(two, device="cpu")
