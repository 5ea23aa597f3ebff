"""Sampling a policy: the one generation path of every stage, from labeling to RL rollouts.

Labeling batches, evals, red-teaming, feedback review and RL rollouts all call `generate` (or
`sample_responses`, its text-level form), so raters, graders, the reward model and RL see the
same kind of text. The rules, in one place:

- prompts go through the tokenizer's chat template when it has one (`tether.hf.chat_prompt`) and
  are LEFT-padded, so every response starts at the same column (what batched `generate` needs);
- a prompt whose length plus ``max_new_tokens`` exceeds the model's context is an input error
  naming the prompt, never a silently shorter response;
- generation ends at EOS, at a ``stop`` string, or after ``max_new_tokens``;
- the text is the model's own, byte for byte: decoding drops only the special tokens (EOS and
  padding) and cuts at the first stop string (which is dropped too). No whitespace is collapsed
  or stripped, so newlines, indentation and code blocks reach raters and the reward model intact;
- sampling settings come from the caller (the spec's ``generation`` section), never from the
  checkpoint's own ``generation_config.json``.

How the random numbers are drawn stays with the caller: `sample_responses` seeds the global torch
generator once and samples with `do_sample=True`; evals and RL pass a logits processor that draws
the token itself under greedy decoding (per-row Gumbel noise, the inverse CDF).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import torch

from tether.conversation import Prompt, essential, is_single_turn, last_user_turn
from tether.errors import TetherInputError
from tether.hf import context_length, prompt_ids, trimmed_turns

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ModelKwargs = Callable[[torch.Tensor, torch.Tensor], dict[str, Any]]
"""(prompt ids, prompt mask) on the model's device -> extra `generate` arguments (e.g. a KV cache)."""


class Sampling(Protocol):
    """What a sampler needs to know; the spec's `GenerationPolicy` is one."""

    @property
    def max_new_tokens(self) -> int: ...
    @property
    def temperature(self) -> float: ...
    @property
    def top_p(self) -> float: ...
    @property
    def top_k(self) -> int: ...
    @property
    def stop(self) -> Sequence[str]: ...
    @property
    def system_prompt(self) -> str | None: ...


@dataclass(frozen=True)
class Generated:
    """One batch of responses. B rows, P prompt columns, R response columns."""

    prompt_ids: torch.Tensor
    """(B, P) long: left-padded prompt token ids."""
    prompt_mask: torch.Tensor
    """(B, P) long: 1 on prompt tokens, 0 on padding."""
    response: torch.Tensor
    """(B, R) long: response ids; after a row's first EOS only the pad id."""
    response_mask: torch.Tensor
    """(B, R) long: 1 on response tokens up to and including the first EOS."""
    has_eos: torch.Tensor
    """(B,) bool: the response ended with EOS rather than at max_new_tokens."""


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id that fills padding: the pad token, else EOS (`tether.hf.ensure_pad_token`'s rule)."""
    pad = tokenizer.pad_token_id
    return int(pad if pad is not None else tokenizer.eos_token_id)


def left_padded(ids: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists -> (ids, mask), both (B, P), padded on the left to the longest."""
    width = max(len(seq) for seq in ids)
    out = torch.full((len(ids), width), pad, dtype=torch.long)  # (B, P)
    mask = torch.zeros_like(out)  # (B, P)
    for row, seq in enumerate(ids):
        out[row, width - len(seq) :] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, width - len(seq) :] = 1
    return out, mask


def response_mask_upto_eos(response: torch.Tensor, eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, R) ids -> ((B, R) mask covering tokens up to and including the first EOS, (B,) has-EOS)."""
    is_eos = response == eos_id  # (B, R)
    has_eos = is_eos.any(dim=1)  # (B,)
    first = torch.where(
        has_eos,
        is_eos.long().argmax(dim=1),
        torch.full_like(has_eos, response.shape[1] - 1, dtype=torch.long),
    )  # (B,)
    cols = torch.arange(response.shape[1], device=response.device).expand_as(response)  # (B, R)
    return (cols <= first.unsqueeze(1)).long(), has_eos


def check_context(
    prompts: Sequence[Prompt],
    ids: Sequence[Sequence[int]],
    max_new_tokens: int,
    context: int,
    *,
    first: int = 0,
) -> None:
    """Raise when a prompt plus max_new_tokens does not fit the context; `first` numbers the prompts."""
    for i, (prompt, seq) in enumerate(zip(prompts, ids, strict=True)):
        if len(seq) + max_new_tokens > context:
            text = last_user_turn(prompt)
            head = text if len(text) <= 60 else f"{text[:57]}..."
            turns = "" if is_single_turn(prompt) else " (its last user turn, with every earlier turn cut)"
            raise TetherInputError(
                f"prompt {first + i} ({head!r}){turns}: {len(seq)} tokens plus max_new_tokens "
                f"{max_new_tokens} exceed the model's context of {context} tokens; shorten the prompt "
                "or lower generation.max_new_tokens"
            )


def fitted_prompts(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[Prompt], *, budget: int, system: str | None
) -> tuple[list[Prompt], list[list[int]]]:
    """(prompts, their token ids) with each conversation longer than ``budget`` tokens cut by whole
    turns from the oldest (`tether.hf.trimmed_turns`: the system message and the last user turn
    stay). One that still does not fit is returned at its shortest, for the caller to refuse."""
    ids = prompt_ids(tokenizer, prompts, system=system)
    out_prompts, out_ids = list(prompts), ids
    for i, (prompt, seq) in enumerate(zip(prompts, ids, strict=True)):
        if len(seq) <= budget or is_single_turn(prompt):
            continue

        def length(p: Prompt) -> int:
            return len(prompt_ids(tokenizer, [p], system=system)[0])

        assert not isinstance(prompt, str)  # a string is a single turn
        cut = trimmed_turns(prompt, lambda p: length(p) <= budget) or essential(prompt)
        out_prompts[i], out_ids[i] = cut, prompt_ids(tokenizer, [cut], system=system)[0]
    return out_prompts, out_ids


def stop_at(text: str, stop: Sequence[str]) -> str:
    """`text` up to (not including) the earliest occurrence of any stop string."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]


def decode_responses(
    tokenizer: PreTrainedTokenizerBase, generated: Generated, stop: Sequence[str] = ()
) -> list[str]:
    """Each row's text exactly as generated: special tokens (EOS, padding) dropped, cut at a stop string.

    `clean_up_tokenization_spaces` is off, so a tokenizer never edits spaces around punctuation."""
    rows = zip(generated.response, generated.response_mask, strict=True)
    texts = [
        str(
            tokenizer.decode(
                r[m.bool()].tolist(), skip_special_tokens=True, clean_up_tokenization_spaces=False
            )
        )
        for r, m in rows
    ]
    return [stop_at(t, stop) for t in texts]


def _generation_config(
    tokenizer: PreTrainedTokenizerBase, sampling: Sampling, room: int, do_sample: bool
) -> Any:
    from transformers import GenerationConfig

    # Every sampling field set explicitly, so a checkpoint's generation_config.json (a Llama's
    # top_p=0.9, say) never adds a warper the spec did not ask for.
    knobs: dict[str, Any] = (
        {"temperature": sampling.temperature, "top_k": sampling.top_k, "top_p": sampling.top_p}
        if do_sample
        else {}
    )
    if sampling.stop:
        knobs["stop_strings"] = list(sampling.stop)
    return GenerationConfig(
        do_sample=do_sample,
        max_new_tokens=room,
        pad_token_id=pad_id(tokenizer),
        eos_token_id=int(tokenizer.eos_token_id),
        repetition_penalty=1.0,
        **knobs,
    )


@torch.no_grad()
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Prompt],
    sampling: Sampling,
    *,
    do_sample: bool = True,
    logits_processor: object | None = None,
    model_kwargs: ModelKwargs | None = None,
    first: int = 0,
) -> Generated:
    """One response per prompt, in one `generate` call; the random stream is the caller's.

    With ``do_sample`` the draw is transformers' own (temperature, top-k, top-p from `sampling`);
    without it ``logits_processor`` must draw the token (greedy decoding picks the only finite score).
    ``first`` is the index of prompts[0] in the caller's list, for error messages."""
    from transformers import GenerationMixin, LogitsProcessorList

    context = context_length(model)
    fitted, encoded = fitted_prompts(
        tokenizer, prompts, budget=context - sampling.max_new_tokens, system=sampling.system_prompt
    )
    check_context(fitted, encoded, sampling.max_new_tokens, context, first=first)
    pad, eos = pad_id(tokenizer), int(tokenizer.eos_token_id)
    ids, mask = left_padded(encoded, pad)  # (B, P), (B, P)
    device = next(model.parameters()).device
    ids, mask = ids.to(device), mask.to(device)
    extra = model_kwargs(ids, mask) if model_kwargs is not None else {}
    if sampling.stop:
        extra["tokenizer"] = tokenizer  # stop_strings needs it to map strings to token ends
    processors = LogitsProcessorList([logits_processor] if logits_processor is not None else [])
    out = cast(GenerationMixin, model).generate(
        input_ids=ids,
        attention_mask=mask,
        generation_config=_generation_config(tokenizer, sampling, sampling.max_new_tokens, do_sample),
        logits_processor=processors,
        **extra,
    )  # (B, P + R)
    response = out[:, ids.shape[1] :]  # (B, R)
    response_mask, has_eos = response_mask_upto_eos(response, eos)  # (B, R), (B,)
    # After the first EOS `generate` writes padding; make it so whatever the pad id is.
    response = torch.where(response_mask.bool(), response, torch.full_like(response, pad))
    return Generated(ids, mask, response, response_mask, has_eos)


def sample_responses(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Prompt],
    *,
    config: Sampling,
    seed: int,
    batch_size: int = 256,
) -> list[str]:
    """One sampled response per prompt, as text: the global torch generator seeded once with `seed`,
    then `batch_size` prompts per `generate` call (left padding, stop at EOS or a stop string)."""
    torch.manual_seed(seed)
    out: list[str] = []
    for start in range(0, len(prompts), batch_size):
        chunk = list(prompts[start : start + batch_size])
        batch = generate(model, tokenizer, chunk, config, first=start)
        out.extend(decode_responses(tokenizer, batch, config.stop))
    return out
