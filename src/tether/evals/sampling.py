"""Sampling a policy on suite prompts: several seeded samples per prompt, batched, repeatable.

A policy is any Hugging Face causal-LM directory with safetensors weights: the SFT policy
(``models/sft-seed0``) or an RL checkpoint (``.tether/rl/<run>/step-000200``), which is one too.

Every (prompt, sample k) has its own random stream, seeded from ``seed + k`` and the prompt text,
so a response never depends on which other prompts share its batch: the quick suite (a prefix),
one suite alone and the full run all give a case the same samples, and two checkpoints answer
a case with the same random numbers (common random numbers make paired comparisons tighter).
Sampling is exact ancestral sampling at ``temperature`` through the Gumbel-max trick: greedy
`generate` over logits / T plus Gumbel noise from each row's own generator. The global torch
random state is never touched, which keeps an RL run that evaluates itself every K steps exactly
resumable.

    sampler = PolicySampler.load(Path("models/sft-seed0"))
    responses = sampler.sample(["what is 2 plus 2 ?"], samples=3)   # [[r0, r1, r2]]
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.conversation import Prompt, is_single_turn, last_user_turn, prompt_key
from tether.errors import TetherInputError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from tether.spec.model import GenerationPolicy

BatchCallback = Callable[[int], None]
"""on_batch(n_responses_done_in_this_batch), for progress bars."""


@dataclass(frozen=True)
class SamplingConfig:
    """How responses are sampled from the policy under evaluation."""

    max_new_tokens: int = 64
    """Longest response in tokens."""
    temperature: float = 1.0
    """Sampling temperature; 1 samples the policy's own distribution."""
    top_p: float = 1.0
    """Nucleus sampling mass (1 = off)."""
    top_k: int = 0
    """Sample among the k most likely tokens (0 = off)."""
    stop: tuple[str, ...] = ()
    """Strings that end a response; the text is cut at the first one."""
    system_prompt: str | None = None
    """The system message each case's conversation starts with unless it has its own."""
    batch_size: int = 64
    """Prompts per `generate` call."""
    seed: int = 0
    """Sample k of every prompt uses seed + k (hashed with the prompt text: see `row_seed`)."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.batch_size < 1 or not self.temperature > 0:
            raise TetherInputError(
                "sampling: max_new_tokens and batch_size must be >= 1 and temperature > 0, got "
                f"{self.max_new_tokens}, {self.batch_size}, {self.temperature}"
            )

    @classmethod
    def from_generation(cls, generation: GenerationPolicy, **overrides: Any) -> SamplingConfig:
        """The spec's `generation` section as eval sampling, with `overrides` (e.g. a seed) on top."""
        fields = {
            "max_new_tokens": generation.max_new_tokens,
            "temperature": generation.temperature,
            "system_prompt": generation.system_prompt,
            "top_p": generation.top_p,
            "top_k": generation.top_k,
            "stop": tuple(generation.stop),
        }
        return cls(**{**fields, **{k: v for k, v in overrides.items() if v is not None}})

    def seeds(self, samples: int) -> list[int]:
        """The seed of each sample index."""
        return [self.seed + k for k in range(samples)]


@dataclass
class PolicySampler:
    """A loaded policy that samples responses for evaluation."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    config: SamplingConfig = field(default_factory=SamplingConfig)

    @classmethod
    def load(
        cls, path: Path, config: SamplingConfig | None = None, *, device: str | None = None
    ) -> PolicySampler:
        """Load a policy directory (safetensors only) onto `device` (default: CUDA when available)."""
        import torch

        from tether.hf import load_causal_lm

        model, tokenizer = load_causal_lm(path)
        target = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(model.to(target), tokenizer, config or SamplingConfig())  # type: ignore[arg-type]

    def sample(
        self, prompts: Sequence[Prompt], *, samples: int, on_batch: BatchCallback | None = None
    ) -> list[list[str]]:
        """``samples`` responses per prompt: out[i][k] is sample k of prompts[i]."""
        if samples < 1:
            raise TetherInputError(f"samples must be at least 1, got {samples}")
        out: list[list[str]] = [[] for _ in prompts]
        for seed in self.config.seeds(samples):
            for index, text in enumerate(self.sample_once(prompts, seed=seed, on_batch=on_batch)):
                out[index].append(text)
        return out

    def sample_once(
        self, prompts: Sequence[Prompt], *, seed: int, on_batch: BatchCallback | None = None
    ) -> list[str]:
        """One response per prompt, batch by batch; prompt i's random stream is row_seed(seed, prompts[i])."""
        texts: list[str] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(prompts), self.config.batch_size):
                chunk = list(prompts[start : start + self.config.batch_size])
                texts.extend(self._generate(chunk, [row_seed(seed, p) for p in chunk]))
                if on_batch is not None:
                    on_batch(len(chunk))
        finally:
            self.model.train(was_training)
        return texts

    def _generate(self, prompts: list[Prompt], seeds: list[int]) -> list[str]:
        from tether.generation import decode_responses, generate

        device = next(self.model.parameters()).device
        noise = GumbelNoise(seeds, self.config.temperature, device, self.config.top_k, self.config.top_p)
        out = generate(
            self.model, self.tokenizer, prompts, self.config, do_sample=False, logits_processor=noise
        )
        return decode_responses(self.tokenizer, out, self.config.stop)


def row_seed(seed: int, prompt: Prompt) -> int:
    """The seed of one prompt's random stream: a stable hash of the sample seed and the prompt text
    (a conversation's content hash, `tether.conversation.prompt_key`; a single turn keeps its text)."""
    text = last_user_turn(prompt) if is_single_turn(prompt) else prompt_key(prompt)
    digest = hashlib.blake2b(f"{seed}\x1f{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # torch seeds are signed 64-bit


class GumbelNoise:
    """A logits processor that turns greedy decoding into sampling at ``temperature``, row by row.

    argmax(logits / T + G) with G ~ Gumbel(0, 1) i.i.d. is distributed as softmax(logits / T)
    (the Gumbel-max trick); each row draws its noise from its own generator."""

    def __init__(
        self,
        seeds: Sequence[int],
        temperature: float,
        device: torch.device,
        top_k: int = 0,
        top_p: float = 1.0,
    ) -> None:
        import torch
        from transformers import TopKLogitsWarper, TopPLogitsWarper

        self.temperature = temperature
        self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]
        # A cut sets the excluded tokens to -inf, so the Gumbel argmax samples the truncated
        # distribution exactly; no cut (the defaults) leaves the scores untouched.
        self.cuts: list[Any] = [TopKLogitsWarper(top_k)] if top_k > 0 else []
        self.cuts += [TopPLogitsWarper(top_p)] if top_p < 1.0 else []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        vocab = scores.shape[-1]
        uniform = torch.stack(
            [torch.rand(vocab, generator=g, device=scores.device) for g in self.generators]
        )  # (B, V)
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-7)))  # (B, V)
        scaled = scores.float() / self.temperature  # (B, V)
        for cut in self.cuts:
            scaled = cut(input_ids, scaled)
        return scaled + gumbel


def sample_policy(
    path: Path, prompts: Sequence[Prompt], *, samples: int, config: SamplingConfig | None = None
) -> list[list[str]]:
    """Load the policy at ``path`` and sample it; out[i][k] is sample k (seed + k) of prompts[i]."""
    return PolicySampler.load(path, config).sample(prompts, samples=samples)
