"""Shared pieces of the RL loop tests (no tests here): a tiny sandbox project with a tiny SFT policy,
a tiny reward model sharing its vocabulary, and a gate verdict.

Built once per session in a template directory (a few seconds), then copied for each test, so every
test gets its own store and run directories. The policy is a one-layer GPT-2 given 40 SFT steps, so its
responses look like sandbox answers; the reward model is an untrained one-layer GPT-2 classifier, so
its scores are arbitrary but deterministic — enough for plumbing, KL, resume and monitors.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tether.hashing import content_sha256
from tether.project import Project
from tether.rl.config import RLConfig
from tether.sandbox import grammar as g
from tether.sandbox.build import sandbox_prompts, store_prompts
from tether.sandbox.config import SandboxConfig, TinyPolicyConfig
from tether.scaffold import init_project
from tether.store import register_artifact

TINY_POLICY = TinyPolicyConfig(
    n_layer=1, n_embd=32, n_head=2, n_positions=128, steps=40, batch_size=16, lr=3e-3
)
TINY_RL = RLConfig(
    steps=3,
    batch_size=4,
    samples_per_prompt=2,
    max_new_tokens=12,
    ppo_epochs=2,
    minibatches=2,
    lr=1e-3,
    baseline_prompts=8,
    sample_every=1,
    save_every=0,
)


def register(
    project: Project, kind: str, path: Path, parents: list[str] | None = None, meta: dict | None = None
) -> str:  # type: ignore[type-arg]
    with project.store.session() as session:
        return register_artifact(
            session,
            project_id=project.project_id,
            kind=kind,
            path=project.relative(path),
            content_hash=content_sha256(path),
            spec_hash=project.spec_hash,
            parents=parents or [],
            meta=meta or {},
        ).id


def vocabulary_texts(cfg: SandboxConfig) -> tuple[list[str], list[tuple[str, str]]]:
    """Texts covering the sandbox's words, and (prompt, response) SFT pairs for the pool prompts."""
    prompts = sandbox_prompts(cfg)
    rng = random.Random(0)
    pairs = [(p.text, g.render_sft_example(p, rng)) for p, split in prompts if split == "pool"]
    phrases = [*g.HEDGE_PREFIXES, *g.HEDGE_SENTENCES, *g.CONFIDENT_SENTENCES, *g.FILLERS, *g.REFUSALS]
    phrases += [
        *g.IDKS,
        *g.COMPLIANCES,
        g.LIST_HEADER,
        "- the answer is",
        " ".join(str(n) for n in range(201)),
    ]
    return phrases + [p.text for p, _ in prompts] + [r for _, r in pairs], pairs


def save_tiny_reward_model(path: Path, tokenizer, seed: int = 0) -> Path:  # type: ignore[no-untyped-def]
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=128,
        n_embd=32,
        n_layer=1,
        n_head=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    config.num_labels = 1
    torch.manual_seed(seed)
    model = GPT2ForSequenceClassification(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    (path / "tether_reward.json").write_text(json.dumps({"format": 1, "export": {}}), encoding="utf-8")
    return path


def pass_gate(project: Project, rm_id: str) -> str:
    """Record a passed gated evaluation of `rm_id`, as `tether rm eval --gate` would."""
    report = project.path("rm_eval", rm_id, "rm_eval.json")
    report.write_text(json.dumps({"spec_hash": project.spec_hash}), encoding="utf-8")
    meta = {"reward_model": rm_id, "gated": True, "gate": {"passed": True, "failures": []}}
    return register(project, "rm_eval", report, [rm_id], meta)


def tighten_budget(project: Project, nats: float) -> Project:
    """The spec's KL budget set to `nats` (no margin), the reward model re-gated under the new spec."""
    text = project.spec_path.read_text(encoding="utf-8")
    assert "rl:" in text
    text = text.replace("kl_budget_nats: 5.0", f"kl_budget_nats: {nats}").replace(
        "kl_budget_margin: 0.2", "kl_budget_margin: 0.0"
    )
    project.spec_path.write_text(text, encoding="utf-8")
    reopened = Project.open(project.root)
    assert reopened.spec.rl.kl_budget_nats == nats
    pass_gate(reopened, latest_id(reopened, "reward_model"))
    return reopened


def build_tiny_project(root: Path, *, gated: bool = True) -> Project:
    """A sandbox project: 240 prompts stored, a sandbox world, a tiny SFT policy and reward model."""
    from tether.sandbox.policy import build_model, save_policy, sft, train_tokenizer

    project = init_project(root, template="sandbox")
    cfg = SandboxConfig(n_prompts=240, policy=TINY_POLICY)
    store_prompts(project, sandbox_prompts(cfg), cfg.seed)
    world = project.path("sandbox", "world-seed0.json")
    world.write_text("{}", encoding="utf-8")
    world_id = register(project, "sandbox_world", world)
    texts, pairs = vocabulary_texts(cfg)
    tokenizer = train_tokenizer(texts)
    model = build_model(tokenizer, TINY_POLICY)
    sft(model, tokenizer, pairs, TINY_POLICY)
    policy_dir = project.path("models", "sft-seed0", "x").parent
    save_policy(model, tokenizer, TINY_POLICY, policy_dir)
    register(project, "policy", policy_dir, [world_id], {"role": "sft"})
    rm_dir = save_tiny_reward_model(project.path("models", "rm-tiny", "x").parent, tokenizer)
    rm_id = register(project, "reward_model", rm_dir)
    if gated:
        pass_gate(project, rm_id)
    return project


@contextmanager
def one_thread() -> Iterator[None]:
    """Tiny models on a shared CPU: one torch thread is 4-10x faster than an oversubscribed pool."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rl-template") / "proj"
    with one_thread():
        project = build_tiny_project(root)
    project.store.close()
    return root


@pytest.fixture
def single_thread() -> Iterator[None]:
    with one_thread():
        yield


@pytest.fixture
def tiny_project(tiny_template: Path, tmp_path: Path, single_thread: None) -> Project:
    """A fresh copy of the template project (its own store, models and run directories)."""
    root = tmp_path / "proj"
    shutil.copytree(tiny_template, root)
    return Project.open(root)


def read_jsonl(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def latest_id(project: Project, kind: str) -> str:
    from tether.store import latest_artifact

    with project.store.session() as session:
        record = latest_artifact(session, project_id=project.project_id, kind=kind)
    assert record is not None
    return record.id
