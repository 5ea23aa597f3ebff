"""The one generation path: exact text, stop strings, the context check, the pad rule, the spec section.

Built on a tiny random-init Llama with a byte-level BPE tokenizer and a ChatML template
(`tests.tiny_llama`), the kind of model a team brings, so nothing here leans on the sandbox's
word-level tokenizer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import LogitsProcessor

from tether.errors import TetherInputError
from tether.evals.sampling import PolicySampler, SamplingConfig
from tether.generation import decode_responses, generate, sample_responses, stop_at
from tether.hf import chat_prompt, ensure_pad_token, load_causal_lm
from tether.labeling.batches import PairSampler, PolicySource, plan_batch
from tether.rl.rollout import HFGenerateRollout
from tether.sandbox.build import sandbox_prompts, store_prompts
from tether.sandbox.config import SandboxConfig
from tether.scaffold import init_project
from tether.spec.model import GenerationPolicy

from .tiny_llama import save_tiny_llama

FORMATTED = (
    "\nHere is the fix:\n\n```python\ndef double(x):\n    if x:\n        return x * 2\n```\n\n"
    "- keep  two spaces\n\tand a tab  "
)
"""Leading newline, blank lines, indentation, a fenced block, double spaces, a tab, trailing spaces."""


class Force(LogitsProcessor):
    """Greedy decoding that writes `ids` (then EOS), whatever the random model prefers."""

    def __init__(self, ids: list[int], eos: int, start: int) -> None:
        self.ids, self.eos, self.start = ids, eos, start

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        step = input_ids.shape[1] - self.start
        token = self.ids[step] if step < len(self.ids) else self.eos
        out = torch.full_like(scores, float("-inf"))  # (B, V)
        out[:, token] = 0.0
        return out


def forced(model, tokenizer, prompts: list[str], text: str, sampling) -> list[str]:  # type: ignore[no-untyped-def]
    """`text` generated for every prompt through `tether.generation.generate`, decoded by its rule."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    width = max(
        len(tokenizer(chat_prompt(tokenizer, p), add_special_tokens=False)["input_ids"]) for p in prompts
    )
    force = Force(ids, int(tokenizer.eos_token_id), width)
    out = generate(model, tokenizer, prompts, sampling, do_sample=False, logits_processor=force)
    return decode_responses(tokenizer, out, sampling.stop)


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("llama") / "policy")


@pytest.fixture(scope="module")
def llama_no_pad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("llama") / "nopad", pad=False)


def test_stop_at_cuts_at_the_earliest_stop_string() -> None:
    assert stop_at("an answer\nUser: more", ["\nUser:", "more"]) == "an answer"
    assert stop_at("a b ### c ###", ["###"]) == "a b "
    assert stop_at("nothing to cut  ", ["</s>"]) == "nothing to cut  "
    assert stop_at("empty stops are ignored", ["", "zz"]) == "empty stops are ignored"


def test_generated_text_is_kept_byte_for_byte(llama: Path) -> None:
    model, tokenizer = load_causal_lm(llama)
    texts = forced(model, tokenizer, ["Fix my code", "a longer prompt, so rows are padded"], FORMATTED,
                   GenerationPolicy(max_new_tokens=200))  # fmt: skip
    assert texts == [FORMATTED, FORMATTED]


def test_a_stop_string_ends_the_response_and_is_cut(llama: Path) -> None:
    model, tokenizer = load_causal_lm(llama)
    sampling = GenerationPolicy(max_new_tokens=200, stop=["```\n\n"])
    [text] = forced(model, tokenizer, ["Fix my code"], FORMATTED, sampling)
    assert text == FORMATTED[: FORMATTED.index("```\n\n")]


def test_a_prompt_longer_than_the_context_is_named(llama: Path) -> None:
    model, tokenizer = load_causal_lm(llama)  # max_position_embeddings 256
    prompts = ["short", "word " * 200]
    n = len(tokenizer(chat_prompt(tokenizer, prompts[1]), add_special_tokens=False)["input_ids"])
    with pytest.raises(TetherInputError) as err:
        sample_responses(model, tokenizer, prompts, config=GenerationPolicy(max_new_tokens=64), seed=0)
    assert "prompt 1 ('word word" in str(err.value)
    assert f"{n} tokens plus max_new_tokens 64 exceed the model's context of 256" in str(err.value)


def test_without_a_pad_token_eos_pads_everywhere(llama_no_pad: Path) -> None:
    model, tokenizer = load_causal_lm(llama_no_pad)
    assert tokenizer.pad_token == tokenizer.eos_token == "<|im_end|>"
    prompts = ["hi", "a much longer prompt than the first one"]
    texts = sample_responses(model, tokenizer, prompts, config=GenerationPolicy(max_new_tokens=8), seed=0)
    assert len(texts) == 2 and texts == sample_responses(
        model, tokenizer, prompts, config=GenerationPolicy(max_new_tokens=8), seed=0
    )
    batch = HFGenerateRollout(model, tokenizer, 8).generate(prompts)
    assert batch.sequences.shape[0] == 2 and "<|im_end|>" not in "".join(batch.responses)


def test_ensure_pad_token_needs_an_eos_when_there_is_no_pad(llama_no_pad: Path) -> None:
    _, tokenizer = load_causal_lm(llama_no_pad)
    tokenizer.pad_token = None
    tokenizer.eos_token = None
    with pytest.raises(TetherInputError, match="neither a pad token nor an EOS token"):
        ensure_pad_token(tokenizer, where="nopad")


def test_eval_top_k_1_is_greedy(llama: Path) -> None:
    """Top-k applies before the Gumbel noise, so top_k=1 leaves only the argmax: every seed agrees."""
    model, tokenizer = load_causal_lm(llama)
    sampler = PolicySampler(model, tokenizer, SamplingConfig(max_new_tokens=12, top_k=1))
    [[first, second, third]] = sampler.sample(["what is two plus two?"], samples=3)
    assert first == second == third


def test_label_plan_samples_a_model_without_a_pad_token(tmp_path: Path, llama_no_pad: Path) -> None:
    project = init_project(tmp_path / "proj", template="sandbox")
    store_prompts(project, sandbox_prompts(SandboxConfig(n_prompts=1200)), 0)
    sampler = PairSampler(
        PolicySource(llama_no_pad, "sft"), None, seed=0, generation=GenerationPolicy(max_new_tokens=6)
    )
    planned = plan_batch(project, n=20, sampler=sampler, labels=sampler.labels, seed=0)
    assert planned.summary.tasks == 20


def test_the_sandbox_spec_samples_as_the_sandbox_always_did(tmp_path: Path) -> None:
    project = init_project(tmp_path / "sandbox", template="sandbox")
    assert project.spec.generation == GenerationPolicy(max_new_tokens=60, temperature=1.0, top_k=0)


def test_label_plan_overrides_the_spec_length_and_refuses_a_zero_temperature(
    tmp_path: Path, llama_no_pad: Path
) -> None:
    from typer.testing import CliRunner

    from tether.cli.main import app
    from tether.store.tasks import anchor_task_ids, task_view

    project = init_project(tmp_path / "proj", template="sandbox")
    store_prompts(project, sandbox_prompts(SandboxConfig(n_prompts=1200)), 0)
    args = ["label", "plan", "--n", "20", "--policy", str(llama_no_pad), "--project", str(project.root)]
    refused = CliRunner().invoke(app, [*args, "--temperature", "0"])
    assert refused.exit_code == 2 and "--temperature must be greater than 0" in refused.output
    done = CliRunner().invoke(app, [*args, "--max-new-tokens", "3", "--temperature", "0.7"])
    assert done.exit_code == 0, done.output
    _, tokenizer = load_causal_lm(llama_no_pad)
    with project.store.session() as session:
        anchors = set(anchor_task_ids(session, project_id=project.project_id).values())
        views = [task_view(session, task_id=i) for i in range(1, 21 + len(anchors)) if i not in anchors]
    texts = [text for v in views if v.origin == "plan" for text in (v.response_a, v.response_b)]
    assert len(texts) == 40
    # Three tokens decode to at most three tokens' worth of bytes (re-encoding is no measure: a
    # random byte-level token can end mid-character and decode to a replacement character).
    widest = max(len(tokenizer.convert_ids_to_tokens(i)) for i in range(len(tokenizer)))
    assert max(len(t) for t in texts) <= 3 * widest
