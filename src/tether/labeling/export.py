"""Turn collected pairwise judgments into a preference dataset: aggregate, split, write, load.

The engine behind `tether data export --out DIR [--format jsonl|hf]`; the store query and CLI live elsewhere.

Format: TRL's *standard preference format with an explicit prompt*: "prompt", "chosen" and "rejected" are
plain strings, chosen/rejected the completions only. TRL 1.16's `RewardTrainer` takes this as-is with a plain
tokenizer (no chat template): for non-conversational rows it appends EOS and tokenizes `prompt + chosen` and
`prompt + rejected`. Strings rather than the conversational (messages) format because the store holds a prompt
and two responses as text, and a chat template belongs to the model being trained, not to the data; the
reward stage can convert to messages when its model has a template. Two consequences for consumers:

- TRL joins prompt and completion with no separator. Texts are exported verbatim, so any separator belongs
  to the stored prompt/response text or to the reward stage, not to this module.
- `RewardTrainer` picks up the "margin" column by itself: its loss is −log σ(r_c − r_r − margin), Llama 2's
  margin loss on the "small" scale (REFERENCES.md). Kept ties (`tie=True`, margin 0) carry no preference;
  filter them out before reward training.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from statistics import fmean
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from tether.errors import TetherInputError

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict, Features

Choice = Literal["A", "B", "tie"]
ExportFormat = Literal["jsonl", "hf"]

# Llama 2's "small" margin scale (Touvron et al. 2023, REFERENCES.md) for slight / clear / strong preferences.
MARGIN_BY_STRENGTH: Final[Mapping[int, float]] = {1: 1 / 3, 2: 2 / 3, 3: 1.0}

MANIFEST_NAME = "manifest.json"
SPLITS: Final = ("train", "test")
_RESERVED_MANIFEST_KEYS: Final = frozenset({"format", "columns", "rows", "rows_by_dimension"})


@dataclass(frozen=True)
class Vote:
    """One rater's judgment; `choice` is in the task's canonical A/B order, whatever order was shown."""

    rater_id: int
    rater_name: str
    choice: Choice
    strength: int
    """1 slight, 2 clear, 3 strong (keys of MARGIN_BY_STRENGTH); ignored for "tie" votes."""


@dataclass(frozen=True)
class TaskVotes:
    """A pairwise task with every vote collected on it."""

    task_id: int
    prompt: str
    response_a: str
    response_b: str
    dimension: str
    stratum: str
    origin: str
    """Where the prompt came from: "plan", "redteam", "production", ..."""
    votes: tuple[Vote, ...]
    spec_hash: str = ""
    """Hash of the spec the task was made under."""


@dataclass(frozen=True)
class PreferenceRow:
    """One row of the exported dataset: TRL's explicit-prompt preference columns plus provenance."""

    prompt: str
    chosen: str
    rejected: str
    dimension: str
    stratum: str
    origin: str
    margin: float
    """Mean MARGIN_BY_STRENGTH of the majority voters; 0.0 for a kept tie."""
    agreement: float
    """Share of all votes that went to the winning option (the largest option, for a kept tie)."""
    n_votes: int
    rater_ids: tuple[int, ...]
    """All voters on the task, in vote order."""
    rater_names: tuple[str, ...]
    task_id: int
    tie: bool = False
    """True for a tie kept with keep_ties=True: chosen is response_a, rejected response_b, margin 0.0."""
    spec_hash: str = ""
    """Hash of the spec the task was made under."""


@dataclass(frozen=True)
class AggregateStats:
    """What happened to the tasks given to `aggregate`; kept + the dropped counts == tasks."""

    tasks: int = 0
    kept: int = 0
    dropped_ties: int = 0
    dropped_no_majority: int = 0
    dropped_no_votes: int = 0
    kept_ties: int = 0
    """Rows in `kept` that are ties (only with keep_ties=True)."""


COLUMNS: Final = tuple(f.name for f in fields(PreferenceRow))


# --- aggregation ------------------------------------------------------------------------------------------


def aggregate(
    tasks: Iterable[TaskVotes], *, keep_ties: bool = False
) -> tuple[list[PreferenceRow], AggregateStats]:
    """Majority vote per task over three options (A, B, tie); a unique plurality wins.

    A "tie" plurality, or no unique plurality (e.g. one vote each for A, B and tie), yields no preference:
    such tasks are dropped unless `keep_ties`, which keeps them as tie rows. Tasks without votes are dropped.

    >>> votes = (Vote(1, "ann", "B", 3), Vote(2, "bob", "B", 1), Vote(3, "cy", "A", 2))
    >>> rows, stats = aggregate([TaskVotes(7, "p", "a", "b", "helpful", "s", "plan", votes)])
    >>> (rows[0].chosen, rows[0].margin, round(rows[0].agreement, 3), stats.kept)
    ('b', 0.6666666666666666, 0.667, 1)
    """
    rows: list[PreferenceRow] = []
    counts: Counter[str] = Counter()
    for task in tasks:
        counts["tasks"] += 1
        if not task.votes:
            counts["dropped_no_votes"] += 1
            continue
        _check_votes(task)
        winner = _plurality(task.votes)
        if winner in ("A", "B"):
            rows.append(_preference_row(task, winner))
        elif keep_ties:
            rows.append(_tie_row(task))
            counts["kept_ties"] += 1
        else:
            counts["dropped_ties" if winner == "tie" else "dropped_no_majority"] += 1
    counts["kept"] = len(rows)
    return rows, AggregateStats(**counts)


def _check_votes(task: TaskVotes) -> None:
    for vote in task.votes:
        if vote.choice not in get_args(Choice):
            raise TetherInputError(
                f"task {task.task_id}: rater {vote.rater_name!r} voted {vote.choice!r}; expected A, B or tie"
            )
        # A tie vote's strength never reaches a margin, so stores may record anything there.
        if vote.choice != "tie" and vote.strength not in MARGIN_BY_STRENGTH:
            raise TetherInputError(
                f"task {task.task_id}: rater {vote.rater_name!r} gave strength {vote.strength}; "
                f"expected one of {sorted(MARGIN_BY_STRENGTH)}"
            )


def _plurality(votes: Sequence[Vote]) -> Choice | None:
    """The option with strictly the most votes, or None when the top count is shared."""
    ranked = Counter(vote.choice for vote in votes).most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


def _top_share(votes: Sequence[Vote]) -> float:
    return max(Counter(vote.choice for vote in votes).values()) / len(votes)


def _preference_row(task: TaskVotes, winner: Literal["A", "B"]) -> PreferenceRow:
    majority = [vote for vote in task.votes if vote.choice == winner]
    chosen, rejected = (
        (task.response_a, task.response_b) if winner == "A" else (task.response_b, task.response_a)
    )
    return _row(task, chosen, rejected, margin=fmean(MARGIN_BY_STRENGTH[v.strength] for v in majority))


def _tie_row(task: TaskVotes) -> PreferenceRow:
    return _row(task, task.response_a, task.response_b, margin=0.0, tie=True)


def _row(task: TaskVotes, chosen: str, rejected: str, *, margin: float, tie: bool = False) -> PreferenceRow:
    return PreferenceRow(
        prompt=task.prompt,
        chosen=chosen,
        rejected=rejected,
        dimension=task.dimension,
        stratum=task.stratum,
        origin=task.origin,
        margin=margin,
        agreement=_top_share(task.votes),
        n_votes=len(task.votes),
        rater_ids=tuple(vote.rater_id for vote in task.votes),
        rater_names=tuple(vote.rater_name for vote in task.votes),
        task_id=task.task_id,
        tie=tie,
        spec_hash=task.spec_hash,
    )


# --- held-out split ---------------------------------------------------------------------------------------


def split_heldout(
    rows: Sequence[PreferenceRow], *, share: float = 0.1, seed: int = 0
) -> tuple[list[PreferenceRow], list[PreferenceRow]]:
    """(train, test), stratified by (dimension, stratum); both keep the input order.

    Each cell of n rows sends `heldout_count(n, share)` rows to test, picked by a shuffle seeded from `seed`
    and the cell's name through SHA-256 (Python's hash() of a str changes per process): the split reproduces
    across runs, and adding rows to one cell leaves the other cells' splits alone.
    """
    if not 0 <= share < 1:
        raise TetherInputError(f"held-out share must be in [0, 1); got {share}")
    cells: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        cells[(row.dimension, row.stratum)].append(index)
    test_indices: set[int] = set()
    for (dimension, stratum), indices in cells.items():
        # Sort first so the pick depends on the rows, not on the order the store returned them in.
        ordered = sorted(indices, key=lambda i: (rows[i].task_id, i))
        random.Random(_cell_seed(seed, dimension, stratum)).shuffle(ordered)
        test_indices.update(ordered[: heldout_count(len(ordered), share)])
    train = [row for i, row in enumerate(rows) if i not in test_indices]
    test = [row for i, row in enumerate(rows) if i in test_indices]
    return train, test


def heldout_count(n: int, share: float) -> int:
    """Rows of an n-row cell that go to test: round(share * n), at least 1 when n >= 2 and share > 0.

    Capped at n - 1 so every cell keeps a training row: a cell seen only at test time would measure
    generalization to an unseen stratum rather than held-out accuracy. A single-row cell stays in train.
    Python's round() rounds halves to even (round(0.5) == 0); the floor of 1 covers that case.
    """
    if n < 2 or share <= 0:
        return 0
    return min(max(round(share * n), 1), n - 1)


def _cell_seed(seed: int, dimension: str, stratum: str) -> int:
    key = json.dumps([seed, dimension, stratum]).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")


# --- writing ----------------------------------------------------------------------------------------------


def write_export(
    out_dir: Path,
    train: Sequence[PreferenceRow],
    test: Sequence[PreferenceRow],
    *,
    fmt: ExportFormat,
    manifest: Mapping[str, object],
) -> list[Path]:
    """Write the splits and manifest.json into `out_dir`, which must not exist or be empty; returns the files.

    jsonl: train.jsonl and test.jsonl, one object per row with the PreferenceRow fields (tuples as lists).
    hf: a `datasets.DatasetDict` saved with `save_to_disk`. Everything is built in a hidden sibling directory
    and renamed into place, so a failure never leaves a half-written export behind.
    """
    if fmt not in get_args(ExportFormat):
        raise TetherInputError(
            f"unknown export format {fmt!r}; expected one of {', '.join(get_args(ExportFormat))}"
        )
    _check_out_dir(out_dir)
    # Serialize before touching the disk: a manifest that is not JSON fails with nothing written.
    manifest_text = (
        json.dumps(_full_manifest(manifest, fmt, train, test), indent=2, ensure_ascii=False) + "\n"
    )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it 0o700; the export is not a secret
        if fmt == "jsonl":
            _write_jsonl(staging, train, test)
        else:
            _save_hf(staging, train, test)
        (staging / MANIFEST_NAME).write_text(manifest_text, encoding="utf-8")
        _move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(path for path in out_dir.rglob("*") if path.is_file())


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise TetherInputError(f"{out_dir}: exists and is not a directory; choose another --out")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise TetherInputError(f"{out_dir}: directory is not empty; choose a new --out or remove it first")


def _move_into_place(staging: Path, out_dir: Path) -> None:
    # rename(2) replaces an empty directory atomically and refuses a non-empty one, which also catches a
    # directory that filled up after _check_out_dir looked at it.
    try:
        os.replace(staging, out_dir)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise TetherInputError(f"{out_dir}: directory is not empty; choose a new --out") from exc
        raise


def _full_manifest(
    manifest: Mapping[str, object], fmt: str, train: Sequence[PreferenceRow], test: Sequence[PreferenceRow]
) -> dict[str, object]:
    clash = sorted(_RESERVED_MANIFEST_KEYS & manifest.keys())
    if clash:
        raise TetherInputError(f"manifest keys {clash} are reserved for the export's own counts")
    by_split = {"train": train, "test": test}
    return {
        **manifest,
        "format": fmt,
        "columns": list(COLUMNS),
        "rows": {name: len(rows) for name, rows in by_split.items()},
        "rows_by_dimension": {
            name: dict(sorted(Counter(row.dimension for row in rows).items()))
            for name, rows in by_split.items()
        },
    }


def _row_record(row: PreferenceRow) -> dict[str, Any]:
    return {name: list(value) if isinstance(value, tuple) else value for name, value in vars(row).items()}


def _write_jsonl(directory: Path, train: Sequence[PreferenceRow], test: Sequence[PreferenceRow]) -> None:
    for name, rows in (("train", train), ("test", test)):
        with (directory / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(_row_record(row), ensure_ascii=False) + "\n")


def _features() -> Features:
    from datasets import Features, List, Value

    return Features(
        {
            "prompt": Value("string"),
            "chosen": Value("string"),
            "rejected": Value("string"),
            "dimension": Value("string"),
            "stratum": Value("string"),
            "origin": Value("string"),
            "margin": Value("float64"),
            "agreement": Value("float64"),
            "n_votes": Value("int64"),
            "rater_ids": List(Value("int64")),
            "rater_names": List(Value("string")),
            "task_id": Value("int64"),
            "tie": Value("bool"),
            "spec_hash": Value("string"),
        }
    )


def _dataset(records: Sequence[Mapping[str, Any]]) -> Dataset:
    from datasets import Dataset

    # Column-wise with explicit features, so an empty split still has its columns and types.
    return Dataset.from_dict(
        {name: [record[name] for record in records] for name in COLUMNS}, features=_features()
    )


def _save_hf(directory: Path, train: Sequence[PreferenceRow], test: Sequence[PreferenceRow]) -> None:
    from datasets import DatasetDict

    splits = {"train": train, "test": test}
    # datasets 5.2 saves an empty split as zero shards, which load_from_disk then fails on; one shard loads.
    empty = {name: 1 for name, rows in splits.items() if not rows}
    DatasetDict(
        {name: _dataset([_row_record(r) for r in rows]) for name, rows in splits.items()}
    ).save_to_disk(str(directory), num_shards=empty)


# --- loading ----------------------------------------------------------------------------------------------


def load_export(path: Path) -> DatasetDict:
    """The export at `path` as a DatasetDict with "train" and "test", whichever format it was written in."""
    if not path.is_dir():
        raise TetherInputError(f"{path}: no export there; create one with `tether data export --out {path}`")
    if (path / "dataset_dict.json").is_file():
        return _load_hf(path)
    if (path / "train.jsonl").is_file() or (path / "test.jsonl").is_file():
        from datasets import DatasetDict

        return DatasetDict({name: _dataset(_read_jsonl(path / f"{name}.jsonl")) for name in SPLITS})
    if not any(path.iterdir()):
        raise TetherInputError(f"{path}: directory is empty; create an export with `tether data export`")
    raise TetherInputError(
        f"{path}: not a Tether export (expected train.jsonl and test.jsonl, or a saved DatasetDict)"
    )


def _load_hf(path: Path) -> DatasetDict:
    from datasets import DatasetDict, load_from_disk

    loaded = load_from_disk(str(path))
    if not isinstance(loaded, DatasetDict) or not set(SPLITS) <= set(loaded):
        raise TetherInputError(f"{path}: saved dataset has no train and test splits; re-export it")
    return loaded


def _read_jsonl(file: Path) -> list[dict[str, Any]]:
    if not file.is_file():
        raise TetherInputError(f"{file}: missing; the export is incomplete, re-export it")
    records: list[dict[str, Any]] = []
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TetherInputError(f"{file}:{number}: not valid JSON ({exc.msg})") from exc
            missing = [name for name in COLUMNS if not isinstance(record, dict) or name not in record]
            if missing:
                raise TetherInputError(f"{file}:{number}: missing columns {missing}; re-export it")
            records.append(record)
    return records
