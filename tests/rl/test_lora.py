"""LoRA for RL (`tether.rl.lora`) on a real architecture: a random-init Llama with a byte-level BPE
tokenizer, both built here, in a copy of the tiny RL project.

Checked: only the adapter (and PPO's value head) trains, the base weights stay bit-identical, the
reference is the policy itself with the adapter off and gives the SFT policy's log-probabilities,
a LoRA checkpoint loads as a plain policy for eval sampling, and a killed LoRA run resumes exactly.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.rl.test_loop_support import (  # noqa: F401
    TINY_RL,
    pass_gate,
    read_jsonl,
    register,
    single_thread,
    tiny_project,
    tiny_template,
)
from tests.rl.test_resume import Killed, assert_rows_equal, kill_at
from tether.project import Project
from tether.rl.checkpoint import load_checkpoint
from tether.rl.config import LoraSettings, RLConfig
from tether.rl.models import build_models, logprobs_and_entropy

EOS, PAD = "<|endoftext|>", "<|pad|>"
LORA = LoraSettings(r=4, alpha=8, dropout=0.0, target_modules="all-linear")


def byte_level_tokenizer(texts: list[str]):  # type: ignore[no-untyped-def]
    """A byte-level BPE tokenizer trained on `texts` (any text encodes: every byte is in the alphabet)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=[EOS, PAD], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD)


def save_llama_pair(root: Path, texts: list[str]) -> tuple[Path, Path]:
    """A random-init Llama policy and a Llama reward model (same tokenizer), saved as safetensors."""
    import json

    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    tokenizer = byte_level_tokenizer(texts)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    dirs = root / "sft-llama", root / "rm-llama"
    LlamaForCausalLM(config).save_pretrained(dirs[0], safe_serialization=True)
    config.num_labels = 1
    LlamaForSequenceClassification(config).save_pretrained(dirs[1], safe_serialization=True)
    for path in dirs:
        tokenizer.save_pretrained(path)
    (dirs[1] / "tether_reward.json").write_text(json.dumps({"format": 1, "export": {}}), encoding="utf-8")
    return dirs


@pytest.fixture
def llama_project(tiny_template: Path, tmp_path: Path, single_thread: None) -> tuple[Project, str, str]:  # noqa: F811
    """(project, policy id, reward model id): the tiny project's prompts with a Llama SFT and RM."""
    from tether.rl.inputs import pool_prompts

    root = tmp_path / "proj"
    shutil.copytree(tiny_template, root)
    project = Project.open(root)
    texts = [p.text for p in pool_prompts(project)] * 4
    sft, rm = save_llama_pair(project.path("models", "x").parent, texts)
    policy_id = register(project, "policy", sft, meta={"role": "sft"})
    rm_id = register(project, "reward_model", rm)
    pass_gate(project, rm_id)
    return project, policy_id, rm_id


def lora_cfg(algo: str, **changes: Any) -> RLConfig:
    lora = {"lora": True, "lora_r": LORA.r, "lora_alpha": LORA.alpha, "lora_dropout": 0.0}
    return replace(TINY_RL, algo=algo, lora_target_modules="all-linear", lr=1e-2, **lora, **changes)  # type: ignore[arg-type]


def one_step(project: Project, cfg: RLConfig):  # type: ignore[no-untyped-def]
    """Build the LoRA models as `tether rl run` does and take one algorithm step."""
    from accelerate import Accelerator

    from tether.reward.scoring import load_reward_model
    from tether.rl.algorithm import StepContext, make_algorithm
    from tether.rl.experience import ScoreProcessing
    from tether.rl.inputs import pool_prompts
    from tether.rl.prompts import PromptSampler
    from tether.rl.rollout import HFGenerateRollout
    from tether.rl.state import prepare

    sft, rm = project.path("models", "sft-llama"), project.path("models", "rm-llama")
    torch.manual_seed(0)
    models = build_models(
        sft, policy_path=None, critic_path=None, critic_from_rm=rm if cfg.algo == "ppo" else None,
        value_init="reward_model", seed=0, lora=cfg.lora_settings,
    )  # fmt: skip
    accelerator = Accelerator(cpu=True)
    model, optimizer, _ = prepare(models, cfg, accelerator)
    before = {k: v.detach().clone() for k, v in models.trainable.named_parameters()}
    rollout = HFGenerateRollout(models.trainable.policy, models.tokenizer, cfg.max_new_tokens)
    ctx = StepContext(
        cfg, model, optimizer, accelerator, models.reference, rollout, load_reward_model(rm, device="cpu"),
        ScoreProcessing(), False, models.reference_off,
    )  # fmt: skip
    out = make_algorithm(cfg.algo).step(ctx, 0, PromptSampler(pool_prompts(project), 0), 0.1)
    return models, before, out


@pytest.mark.parametrize("algo", ["rloo", "ppo"])
def test_a_lora_step_trains_the_adapter_only_and_its_reference_is_the_sft_policy(
    llama_project: tuple[Project, str, str], algo: str
) -> None:
    from tether.hf import load_causal_lm

    project, _, _ = llama_project
    models, before, out = one_step(project, lora_cfg(algo))
    policy = models.trainable.policy
    assert models.reference is policy  # one copy of the weights: no second model was loaded
    after = dict(models.trainable.named_parameters())
    trained = {k for k, v in after.items() if v.requires_grad}
    assert trained and all("lora_" in k or k.startswith("critic.score") for k in trained)
    assert all(not torch.equal(after[k], before[k]) for k in trained if "lora_B" in k or "critic" in k)
    assert all(torch.equal(after[k], before[k]) for k in after if k not in trained)  # base untouched
    assert (models.trainable.critic is not None) == (algo == "ppo")

    sft, _ = load_causal_lm(project.path("models", "sft-llama"))
    base = {k.replace("policy.", "", 1).replace(".base_layer", ""): v for k, v in after.items()}
    assert all(torch.equal(base[k], v) for k, v in sft.state_dict().items())
    # The reference pass (adapter off, before the update) is the SFT policy's, to float rounding:
    # the same weights and ops, so allow a few float32 ulps of the largest log-probability.
    exp, temperature = out.experience, TINY_RL.temperature
    with torch.no_grad():
        expected, _ = logprobs_and_entropy(sft, exp.batch, temperature)
        with models.reference_off():
            now_off, _ = logprobs_and_entropy(policy, exp.batch, temperature)
        now_on, _ = logprobs_and_entropy(policy, exp.batch, temperature)
    tol = 8 * torch.finfo(torch.float32).eps * float(expected.abs().max())
    mask = exp.mask.bool()
    assert torch.allclose(exp.ref_logprobs[mask], expected[mask], rtol=0, atol=tol)
    assert torch.allclose(now_off[mask], expected[mask], rtol=0, atol=tol)  # after the update too
    assert float((now_on - expected)[mask].abs().max()) > 1e3 * tol  # the adapter did move the policy


def test_lora_settings_come_from_the_spec_and_old_checkpoints_read_as_full_fine_tuning() -> None:
    from tether.spec.model import LoraPolicy, RLPolicy

    spec = RLPolicy(lora=LoraPolicy(enabled=True, r=8, target_modules=("q_proj", "v_proj")))
    cfg = RLConfig().resolve(spec)
    assert cfg.lora_settings == LoraSettings(8, 32, 0.0, ("q_proj", "v_proj"))
    assert RLConfig(lora=False).resolve(spec).lora_settings is None  # --no-lora wins over the spec
    assert RLConfig(lora_r=4).resolve(spec).lora_settings.r == 4  # type: ignore[union-attr]
    assert RLConfig().resolve(RLPolicy()).lora_settings is None  # off by default
    assert RLConfig.from_dict({"algo": "rloo"}).resolve(spec).lora_settings is None
    with pytest.raises(ValueError, match="lora_r must be at least 1"):
        RLConfig(lora_r=0)


@pytest.mark.parametrize("algo", ["rloo", "ppo"])
def test_a_lora_run_saves_a_loadable_policy_and_resumes_exactly(
    llama_project: tuple[Project, str, str], tmp_path: Path, algo: str
) -> None:
    from tether.evals.sampling import PolicySampler, SamplingConfig
    from tether.hf import load_causal_lm
    from tether.rl.lora import load_adapter
    from tether.rl.run import run_rl

    project, policy_id, rm_id = llama_project
    cfg = lora_cfg(algo, steps=4, save_every=2)
    ids: dict[str, Any] = {"policy": policy_id, "reward_model": rm_id}
    full = run_rl(project, cfg, **ids)
    assert full.status == "completed" and full.steps == 4
    checkpoint = load_checkpoint(full.checkpoint)
    stored = checkpoint.meta["config"]
    assert (stored["lora"], stored["lora_r"], stored["lora_alpha"]) == (True, LORA.r, LORA.alpha)
    assert checkpoint.adapter_path is not None
    assert (checkpoint.critic_path is not None) == (algo == "ppo")

    # The top level is the merged policy: it loads without peft and matches base + adapter.
    merged, tokenizer = load_causal_lm(full.checkpoint)
    assert not any("lora" in k for k in merged.state_dict())
    base, _ = load_causal_lm(project.path("models", "sft-llama"))
    with_adapter = load_adapter(base, checkpoint.adapter_path)
    ids_ = tokenizer(["a prompt to read"], return_tensors="pt").input_ids
    with torch.no_grad():
        a, b = merged(input_ids=ids_).logits, with_adapter(input_ids=ids_).logits
    assert torch.allclose(a, b, rtol=0, atol=64 * torch.finfo(torch.float32).eps * float(b.abs().max()))
    sampler = PolicySampler.load(full.checkpoint, SamplingConfig(max_new_tokens=6), device="cpu")
    assert len(sampler.sample_once(["Say something."], seed=0)) == 1

    # Killed at step 2, resumed from the step-2 checkpoint: the same metrics as the whole run.
    shutil.copytree(project.root, tmp_path / "killed", ignore=shutil.ignore_patterns("rl"))
    killed = Project.open(tmp_path / "killed")
    with pytest.raises(Killed):
        run_rl(killed, cfg, on_step=kill_at(2), **ids)
    [step2] = sorted((killed.state_dir / "rl").glob("*/step-000002"))
    resumed = run_rl(killed, resume_from=str(step2))
    assert resumed.status == "completed" and resumed.steps == 4
    assert_rows_equal(
        read_jsonl(resumed.run_dir / "metrics.jsonl"), read_jsonl(full.run_dir / "metrics.jsonl")
    )


def test_cli_lora_run_and_resumes_that_cannot_switch_mode_exit_2(
    llama_project: tuple[Project, str, str],
) -> None:
    from typer.testing import CliRunner

    from tether.cli.main import app

    project, policy_id, rm_id = llama_project
    base = ["rl", "run", "--project", str(project.root), "--policy", policy_id, "--reward-model", rm_id]
    tiny = ["--algo", "rloo", "--batch-size", "2", "--max-new-tokens", "6", "--ppo-epochs", "1"]
    tiny += ["--minibatches", "1", "--save-every", "0"]
    runner = CliRunner()
    lora = runner.invoke(app, [*base, *tiny, "--steps", "1", "--lora", "--lora-r", "2"])
    assert lora.exit_code == 0, lora.output
    full = runner.invoke(app, [*base, *tiny, "--steps", "1", "--no-lora"])
    assert full.exit_code == 0, full.output
    lora_dir, full_dir = sorted(
        (project.state_dir / "rl").glob("*/step-000001"), key=lambda p: p.stat().st_mtime
    )
    stored = load_checkpoint(lora_dir).meta["config"]
    assert (stored["lora"], stored["lora_r"]) == (True, 2) and load_checkpoint(full_dir).adapter_path is None
    resume = ["rl", "run", "--project", str(project.root), "--steps", "2", "--from"]
    for checkpoint, flags, message in [
        (full_dir, ["--lora"], "no LoRA adapter"),
        (lora_dir, ["--no-lora"], "resumes with LoRA"),
        (lora_dir, ["--lora-r", "4"], "trained with r=2"),
    ]:
        refused = runner.invoke(app, [*resume, str(checkpoint), *flags])
        assert refused.exit_code == 2 and message in " ".join(refused.output.split()), refused.output


def test_gpt2_lora_conv1d_adapter_merges_into_a_loadable_policy(
    tiny_project: Project,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The sandbox's GPT-2 (Conv1D projections, tied embeddings): adapter off is the SFT policy, and
    the merged weights a checkpoint saves load as a plain policy giving the adapter-on logits."""
    from tether.hf import load_causal_lm
    from tether.rl.lora import merged_state_dict

    sft = tiny_project.path("models", "sft-seed0")
    models = build_models(
        sft, policy_path=None, critic_path=None, critic_from_rm=None, value_init="policy", seed=0, lora=LORA
    )
    policy = models.trainable.policy
    torch.manual_seed(1)
    for name, param in policy.named_parameters():
        if "lora_B" in name:  # B starts at zero; move it so the adapter changes the function
            torch.nn.init.normal_(param, std=0.05)
    ids = models.tokenizer(["a prompt to read"], return_tensors="pt").input_ids
    plain, _ = load_causal_lm(sft)
    with torch.no_grad():
        with models.reference_off():
            off = policy(input_ids=ids).logits
        on, expected = policy(input_ids=ids).logits, plain(input_ids=ids).logits
    tol = 64 * torch.finfo(torch.float32).eps * float(expected.abs().max())
    assert torch.allclose(off, expected, rtol=0, atol=tol)
    assert float((on - expected).abs().max()) > 1e3 * tol
    policy.save_pretrained(
        tmp_path / "merged", safe_serialization=True, state_dict=merged_state_dict(models.adapter)
    )
    models.tokenizer.save_pretrained(tmp_path / "merged")
    merged, _ = load_causal_lm(tmp_path / "merged")
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, on, rtol=0, atol=tol)
