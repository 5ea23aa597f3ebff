"""Typed configuration of the sandbox stage: the world build and the tiny policy.

Kept free of heavy imports so that the CLI can show defaults without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TinyPolicyConfig:
    """Size and SFT schedule of the sandbox policy."""

    n_layer: int = 2
    """Transformer blocks."""
    n_embd: int = 128
    """Hidden size."""
    n_head: int = 4
    """Attention heads."""
    n_positions: int = 128
    """Context length in tokens (prompt plus response)."""
    steps: int = 1300
    """SFT optimizer steps."""
    batch_size: int = 32
    """Sequences per step."""
    lr: float = 3e-3
    """Peak learning rate (linear warmup, cosine decay)."""
    warmup_steps: int = 50
    """Warmup steps."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    seed: int = 0
    """Seed for initialization and batch order."""


@dataclass(frozen=True)
class SandboxConfig:
    """How the sandbox world is built."""

    seed: int = 0
    """Seed of prompts, SFT corpus, anchors, initialization and simulated judgments."""
    n_prompts: int = 12000
    """Prompts generated into the store (pool plus held-out eval split)."""
    eval_share: float = 0.1
    """Share of prompts held out for behavioral suites; never trained or labelled on."""
    responses_per_prompt: int = 2
    """SFT responses sampled per pool prompt from the SFT style mix."""
    policy: TinyPolicyConfig = field(default_factory=TinyPolicyConfig)
    """Tiny policy size and SFT schedule."""
