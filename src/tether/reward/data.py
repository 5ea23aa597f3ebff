"""Preference pairs for reward training: load an export, tokenize, bucket by length, pack batches.

Every (prompt, response) goes through `tether.hf.scored_text`, the one layout that evaluation,
probes and RL read too. A batch of B pairs becomes ONE forward pass of 2B sequences (chosen
rows first, then rejected), padded on the right to the longest sequence in the batch.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch.utils.data import Sampler

from tether.conversation import Prompt, conversation
from tether.errors import TetherInputError
from tether.hf import ScoredLayout
from tether.labeling.export_files import MANIFEST_NAME, load_export

if TYPE_CHECKING:
    from tether.spec import Spec


@dataclass(frozen=True)
class PreferencePair:
    """One comparison to learn from: `chosen` beat `rejected` for `prompt`, by `margin`."""

    prompt: Prompt
    chosen: str
    rejected: str
    dimension: str
    margin: float = 0.0
    tie: bool = False
    """A kept tie: neither is better, and training pulls the two rewards together (`tie_loss`)."""


@dataclass(frozen=True)
class PreferenceData:
    """An export's usable pairs (ties left out) and its manifest."""

    path: Path
    train: list[PreferencePair]
    test: list[PreferencePair]
    manifest: dict[str, Any]
    ties_dropped: int
    """Held-out rows kept as ties: accuracy has no right answer for them, so they are skipped there.
    Training ties (`tether data export --keep-ties`, and the loop's counterfactual pairs) train."""


def read_manifest(path: Path) -> dict[str, Any]:
    """The export's manifest.json, or {} when the export has none (a hand-made export)."""
    file = path / MANIFEST_NAME
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TetherInputError(f"{file}: not valid JSON ({exc.msg}); re-export it") from exc
    if not isinstance(data, dict):
        raise TetherInputError(f"{file}: expected a JSON object; re-export it")
    return data


def _reply(value: Any, where: str) -> str:
    """A candidate as a string: TRL's standard form, or its conversational one-assistant-message list."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        message = value[0]
        if message.get("role") == "assistant" and isinstance(message.get("content"), str):
            return str(message["content"])
    raise TetherInputError(f"{where}: expected a string or one assistant message [{{role, content}}]")


def _pair(row: dict[str, Any], where: str) -> PreferencePair:
    raw = row["prompt"]
    prompt: Prompt = raw if isinstance(raw, str) else conversation(raw, where=f"{where}.prompt")
    chosen, rejected = _reply(row["chosen"], f"{where}.chosen"), _reply(row["rejected"], f"{where}.rejected")
    margin = 0.0 if row["tie"] else float(row["margin"] or 0.0)
    return PreferencePair(prompt, chosen, rejected, row["dimension"], margin, bool(row["tie"]))


def load_preference_data(path: Path) -> PreferenceData:
    """The export at `path` (jsonl or hf) as pairs; raises when it has no training pair."""
    splits = load_export(path)
    pairs: dict[str, list[PreferencePair]] = {}
    ties = 0
    for name in ("train", "test"):
        rows = splits[name].to_list()
        ties += sum(bool(row["tie"]) for row in rows) if name == "test" else 0
        # A training tie says "neither is better", which the loss can use; a held-out tie has no
        # right order for an accuracy to check.
        pairs[name] = [
            _pair(r, f"{path} ({name} row {i + 1})")
            for i, r in enumerate(rows)
            if name == "train" or not r["tie"]
        ]
    if not any(not p.tie for p in pairs["train"]):
        raise TetherInputError(
            f"{path}: the export has no training pairs that are not ties; "
            "label more comparisons and run `tether data export` again"
        )
    return PreferenceData(path, pairs["train"], pairs["test"], read_manifest(path), ties)


# --- tokenization -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedPair:
    """Token ids of both sides of a pair, as the reward model reads them."""

    chosen_ids: list[int]
    rejected_ids: list[int]
    margin: float
    tie: bool = False

    @property
    def length(self) -> int:
        """The longer side: what this pair adds to its batch's padded width."""
        return max(len(self.chosen_ids), len(self.rejected_ids))


def encode_pairs(
    layout: ScoredLayout, pairs: Sequence[PreferencePair], max_length: int
) -> tuple[list[EncodedPair], int]:
    """(encoded pairs, pairs left out for exceeding max_length), in input order.

    A conversation whose longer side overruns max_length loses whole turns from the oldest, the same
    cut for both sides (`ScoredLayout.fitted`). A pair still too long is left out rather than cut,
    as TRL does: cutting the end would drop the closing the score head reads, and cutting the start
    would score a different prompt. The caller reports how many."""
    ids = layout.ids(
        [p.prompt for p in pairs for _ in range(2)], [side for p in pairs for side in (p.chosen, p.rejected)]
    )
    encoded = []
    for i, pair in enumerate(pairs):
        chosen, rejected = ids[2 * i], ids[2 * i + 1]
        if max(len(chosen), len(rejected)) > max_length:
            chosen, rejected = layout.fitted(pair.prompt, [pair.chosen, pair.rejected], max_length)[1]
        encoded.append(EncodedPair(chosen, rejected, pair.margin, pair.tie))
    kept = [pair for pair in encoded if pair.length <= max_length]
    return kept, len(encoded) - len(kept)


@dataclass(frozen=True)
class PairCollator:
    """Packs B pairs into one batch of 2B right-padded sequences: rows [0, B) chosen, [B, 2B) rejected."""

    pad_id: int

    def __call__(self, pairs: Sequence[EncodedPair]) -> dict[str, torch.Tensor]:
        sequences = [p.chosen_ids for p in pairs] + [p.rejected_ids for p in pairs]
        width = max(len(seq) for seq in sequences)
        input_ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)  # (2B, T)
        attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)  # (2B, T)
        for row, seq in enumerate(sequences):
            input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            attention_mask[row, : len(seq)] = 1
        margin = torch.tensor([p.margin for p in pairs], dtype=torch.float)  # (B,)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "margin": margin}
        if any(p.tie for p in pairs):  # only then: a batch without ties trains exactly as before
            batch["tie"] = torch.tensor([p.tie for p in pairs], dtype=torch.bool)  # (B,)
        return batch


# --- length bucketing -------------------------------------------------------------------------------------


def bucketed_batches(
    lengths: Sequence[int], *, batch_size: int, bucket_size: int, rng: random.Random
) -> list[list[int]]:
    """Batches of indices: shuffle, sort by length within chunks of bucket_size x batch_size, cut into
    batches, shuffle the batches. Every index appears exactly once; only the last batch may be short."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * bucket_size
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        bucket = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches += [bucket[i : i + batch_size] for i in range(0, len(bucket), batch_size)]
    # Keep the one short batch last, so every other step sees a full batch.
    full = [b for b in batches if len(b) == batch_size]
    short = [b for b in batches if len(b) < batch_size]
    rng.shuffle(full)
    return full + short


def even_tail(batches: list[list[int]], shards: int) -> list[list[int]]:
    """`batches` with the short last batch cut to a multiple of `shards` (dropped when that leaves none),
    so that every process and accumulation step gets an equal share of it: equal shares make the mean of
    the per-shard mean losses the mean over the global batch. Full batches divide already (split_batch)."""
    if not batches or shards == 1:
        return batches
    keep = len(batches[-1]) - len(batches[-1]) % shards
    return [*batches[:-1], batches[-1][:keep]] if keep else batches[:-1]


def rank_share(batch: Sequence[int], *, accumulation: int, world_size: int, rank: int) -> list[list[int]]:
    """This rank's micro-batches of one global batch: cut into `accumulation` consecutive chunks, each cut
    into `world_size` contiguous slices, slice `rank` of each. Over all ranks the slices cover the batch."""
    chunk = len(batch) // accumulation
    share = chunk // world_size
    return [
        list(batch[step * chunk + rank * share : step * chunk + (rank + 1) * share])
        for step in range(accumulation)
    ]


class LengthBucketSampler(Sampler[list[int]]):
    """A seeded batch sampler over `bucketed_batches`; each pass over it is a new epoch's order.

    The global batches (of `batch_size` pairs) are the same on any number of processes; each rank yields
    its own micro-batches of each (`rank_share`), so a step on N ranks sees the pairs one rank would."""

    def __init__(
        self,
        lengths: Sequence[int],
        *,
        batch_size: int,
        bucket_size: int,
        seed: int,
        accumulation: int = 1,
        world_size: int = 1,
        rank: int = 0,
    ) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.bucket_size = bucket_size
        self.seed = seed
        self.accumulation = accumulation
        self.world_size = world_size
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def steps_per_epoch(self) -> int:
        """Global batches (optimizer steps) per pass: the full ones, plus the short last one if any of it
        is left once cut to a multiple of processes x accumulation."""
        full, tail = divmod(len(self.lengths), self.batch_size)
        return full + int(tail >= self.accumulation * self.world_size)

    def __len__(self) -> int:
        return self.steps_per_epoch * self.accumulation

    def global_batches(self) -> list[list[int]]:
        """This pass's global batches, identical on every rank; advances the epoch."""
        rng = random.Random(f"{self.seed}:{self.epoch}")
        self.epoch += 1
        batches = bucketed_batches(
            self.lengths, batch_size=self.batch_size, bucket_size=self.bucket_size, rng=rng
        )
        return even_tail(batches, self.accumulation * self.world_size)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.global_batches():
            yield from rank_share(
                batch, accumulation=self.accumulation, world_size=self.world_size, rank=self.rank
            )


def padding_share(batches: Sequence[Sequence[int]], lengths: Sequence[int]) -> float:
    """Share of a batch's token slots that are padding, over all batches (each pair counted twice)."""
    slots = sum(2 * len(b) * max(lengths[i] for i in b) for b in batches if b)
    used = sum(2 * lengths[i] for b in batches for i in b)
    return 1 - used / slots if slots else 0.0


# --- data sufficiency -------------------------------------------------------------------------------------


class _Dimensioned(Protocol):
    @property
    def dimension(self) -> str: ...


def sufficiency_warnings(rows: Sequence[_Dimensioned], spec: Spec) -> list[str]:
    """Where the training data falls short of the spec's `reward_model` minimums; [] when it does not.

    Training goes ahead anyway: the gate (`tether rm eval --gate`) decides whether the model is usable."""
    policy = spec.reward_model
    warnings: list[str] = []
    if len(rows) < policy.min_pairs:
        warnings.append(
            f"{len(rows)} training pairs, fewer than the spec's reward_model.min_pairs = {policy.min_pairs}"
        )
    counts = Counter(row.dimension for row in rows)
    short = {d: counts[d] for d in spec.dimension_ids if counts[d] < policy.min_pairs_per_dimension}
    if short:
        listed = ", ".join(f"{d} {n}" for d, n in short.items())
        warnings.append(
            f"dimensions below the spec's reward_model.min_pairs_per_dimension = "
            f"{policy.min_pairs_per_dimension}: {listed}"
        )
    return warnings


def spec_mismatch(project_hash: str, data: PreferenceData, *, strict: bool) -> str:
    """'' when the export was made under the project's spec; else the warning (an error when strict)."""
    export_hash = data.manifest.get("spec_hash")
    if export_hash == project_hash:
        return ""
    where = data.path / MANIFEST_NAME
    if export_hash is None:
        message = f"{where} records no spec_hash: cannot tell which spec the labels follow"
    else:
        message = (
            f"{where}: exported under spec {str(export_hash)[:12]}, but the project's spec is "
            f"{project_hash[:12]}; the labels may follow an older rubric (re-export after relabeling)"
        )
    if strict:
        raise TetherInputError(f"{message}; refusing under --strict")
    return message
