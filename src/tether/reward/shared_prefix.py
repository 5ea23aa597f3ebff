"""Shared-prefix pair batching: a pair's common prompt is read once, not twice.

The two sides of a preference pair share their prompt (and often the first tokens of the reply), so
a plain batch (`PairCollator`) spends most of its compute reading the same prefix twice. Here a pair
is one row, ``prefix | chosen suffix | rejected suffix``:

- positions restart after the chosen suffix, so the rejected suffix sits where it would follow the
  prefix on its own (``0..P-1 | P..P+C-1 | P..P+R-1``);
- a causal mask with one hole: rejected tokens do not see chosen tokens;
- the score head's output is read at the last token of each side.

Every token then sees exactly what it sees in its own sequence, at the same position, so the two
rewards equal the plain batch's up to float rounding (masked keys contribute exactly zero). On a
128-token prompt with 20-token replies a pair costs 168 token slots instead of 296.

This needs a model that takes ``position_ids`` and a 4D attention mask as it is (transformers'
Llama, Qwen, Mistral, GPT-2, ...: ``masking_utils`` returns a 4D mask unchanged) and a score head
module named ``score`` (every ``*ForSequenceClassification`` of a causal LM). `works_for` checks a
model on real pairs before training relies on it; where it does not hold, training falls back to the
plain batch. This departs from TRL's `RewardTrainer`, which reads both full sequences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tether.reward.data import EncodedPair, PairCollator


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token id sequences.

    >>> common_prefix([5, 6, 7, 8], [5, 6, 9])
    2
    """
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def shared_length(pair: EncodedPair) -> int:
    """Token slots the pair takes as one shared-prefix row: P + C + R."""
    p = common_prefix(pair.chosen_ids, pair.rejected_ids)
    return len(pair.chosen_ids) + len(pair.rejected_ids) - p


@dataclass(frozen=True)
class SharedPrefixCollator:
    """Packs B pairs into B right-padded shared-prefix rows, with their positions, mask and read-outs."""

    pad_id: int

    def __call__(self, pairs: Sequence[EncodedPair]) -> dict[str, torch.Tensor]:
        rows, positions, spans = [], [], []
        for pair in pairs:
            chosen, rejected = pair.chosen_ids, pair.rejected_ids
            p = common_prefix(chosen, rejected)
            c, r = len(chosen) - p, len(rejected) - p
            rows.append([*chosen, *rejected[p:]])
            positions.append([*range(p + c), *range(p, p + r)])
            spans.append((p, c, r))
        width = max(len(row) for row in rows)
        b = len(pairs)
        input_ids = torch.full((b, width), self.pad_id, dtype=torch.long)  # (B, W)
        position_ids = torch.zeros((b, width), dtype=torch.long)  # (B, W)
        causal = torch.ones((width, width), dtype=torch.bool).tril()  # (W, W)
        mask = causal.repeat(b, 1, 1)  # (B, W, W): query row, key column
        chosen_at = torch.empty(b, dtype=torch.long)  # (B,)
        rejected_at = torch.empty(b, dtype=torch.long)  # (B,)
        for i, (row, pos, (p, c, r)) in enumerate(zip(rows, positions, spans, strict=True)):
            n = len(row)
            input_ids[i, :n] = torch.tensor(row, dtype=torch.long)
            position_ids[i, :n] = torch.tensor(pos, dtype=torch.long)
            mask[i, p + c : n, p : p + c] = False  # rejected tokens never see the chosen suffix
            mask[i, :, n:] = False  # nobody sees padding...
            mask[i, n:, :] = False
            mask[i, n:, n:] = torch.eye(width - n, dtype=torch.bool)  # ...but a pad sees itself: no NaN rows
            # A side that is all prefix (one reply a prefix of the other) is read at the prefix's end.
            chosen_at[i] = p + c - 1
            rejected_at[i] = (p + c + r - 1) if r else p - 1
        batch = {
            "input_ids": input_ids,
            "position_ids": position_ids,
            "attention_mask": mask.unsqueeze(1),  # (B, 1, W, W), True = may attend
            "chosen_at": chosen_at,
            "rejected_at": rejected_at,
            "margin": torch.tensor([p.margin for p in pairs], dtype=torch.float),  # (B,)
        }
        if any(p.tie for p in pairs):  # as PairCollator: only then
            batch["tie"] = torch.tensor([p.tie for p in pairs], dtype=torch.bool)  # (B,)
        return batch


def score_head(model: torch.nn.Module) -> torch.nn.Module | None:
    """The module that maps hidden states to the reward (named ``score``), through any wrapper (DDP,
    peft's ModulesToSaveWrapper, ...): the outermost one, whose output is the head's. None if absent."""
    found = [(name, m) for name, m in model.named_modules() if name.rsplit(".", 1)[-1] == "score"]
    return min(found, key=lambda item: item[0].count("."))[1] if found else None


def attention_bias(mask: torch.Tensor, *, implementation: str, dtype: torch.dtype) -> torch.Tensor:
    """The 4D mask as the attention implementation takes it: SDPA reads a boolean (True = attend), the
    eager path adds it to the scores, so it gets 0 where allowed and the dtype's minimum elsewhere."""
    if implementation == "sdpa":
        return mask
    bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return bias.masked_fill(~mask, torch.finfo(dtype).min)


def shared_rewards(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], *, head: torch.nn.Module, implementation: str
) -> torch.Tensor:
    """Rewards of a `SharedPrefixCollator` batch: (B rows) -> (2B,), chosen first, as `rewards` gives."""
    captured: list[torch.Tensor] = []
    handle = head.register_forward_hook(lambda _module, _args, out: captured.append(out))
    dtype = next(p.dtype for p in head.parameters())
    mask = attention_bias(batch["attention_mask"], implementation=implementation, dtype=dtype)
    try:
        model(
            input_ids=batch["input_ids"],
            attention_mask=mask,
            position_ids=batch["position_ids"],
            use_cache=False,
        )
    finally:
        handle.remove()
    logits = captured[-1].squeeze(-1)  # (B, W): the head's output at every token
    rows = torch.arange(logits.shape[0], device=logits.device)
    return torch.cat([logits[rows, batch["chosen_at"]], logits[rows, batch["rejected_at"]]])  # (2B,)


def implementation_of(model: torch.nn.Module) -> str:
    config = getattr(model, "config", None)
    return str(getattr(config, "_attn_implementation", None) or "eager")


@torch.no_grad()
def max_difference(
    model: torch.nn.Module,
    pairs: Sequence[EncodedPair],
    *,
    pad_id: int,
    head: torch.nn.Module,
    implementation: str,
) -> float:
    """Largest |shared − plain| reward over `pairs`, relative to max(1, |plain|), in eval mode."""
    from tether.reward.model import rewards

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        plain_batch = {k: v.to(device) for k, v in PairCollator(pad_id)(pairs).items()}
        shared_batch = {k: v.to(device) for k, v in SharedPrefixCollator(pad_id)(pairs).items()}
        plain = rewards(model, plain_batch).double()
        shared = shared_rewards(model, shared_batch, head=head, implementation=implementation).double()
    finally:
        model.train(was_training)
    return float(((shared - plain).abs() / plain.abs().clamp(min=1.0)).max())


def tolerance(dtype: torch.dtype) -> float:
    """How far the two readings of the same pairs may differ, relative to max(1, |reward|), and
    still be one function: 64 units of the dtype's precision (float32: 7.6e-6).

    They differ only in reduction order (softmax and matmuls over differently shaped batches), a
    few units of precision per layer. A wrong position or a mask the model ignores moves a trained
    model's rewards by orders of magnitude more, and even a random-init one's by more than this
    (a 2-layer random Llama with positions counted on through the chosen suffix: 6e-5). A deep model
    whose rounding exceeds it only falls back to the plain batch, with a warning."""
    return 64 * torch.finfo(dtype).eps


def works_for(
    model: torch.nn.Module, pairs: Sequence[EncodedPair], *, pad_id: int, implementation: str | None = None
) -> tuple[bool, str]:
    """Whether shared-prefix batching reads `model` exactly on these pairs, and why not when it does not.

    `implementation` is the attention implementation (default: the model's config's; pass it for a
    wrapped model, whose config is its inner model's)."""
    head = score_head(model)
    if head is None:
        return False, "the model has no score head named 'score'"
    if not pairs:
        return False, "no pairs to check it on"
    dtype = next(p.dtype for p in head.parameters())
    try:
        diff = max_difference(
            model, pairs, pad_id=pad_id, head=head, implementation=implementation or implementation_of(model)
        )
    except (TypeError, ValueError, RuntimeError) as err:  # a model that refuses 4D masks or position ids
        return False, f"the model refused it ({type(err).__name__}: {err})"
    limit = tolerance(dtype)
    if not diff <= limit:
        return False, f"its rewards differ from the plain batch's by {diff:.2e} (> {limit:.0e})"
    return True, f"rewards equal to the plain batch's within {diff:.1e}"
