"""Writing and loading preference exports: JSONL or a `datasets` DatasetDict, plus a manifest.

Kept apart from `labeling.export` (aggregation and the held-out split), which defines the rows.
Writes are atomic: a half-written export never appears under its final name.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from tether.conversation import as_dicts, conversation, is_single_turn, last_user_turn, with_system
from tether.errors import TetherInputError
from tether.files import check_free_dir, staged_dir
from tether.labeling.export import COLUMNS, PreferenceRow

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict, Features

ExportFormat = Literal["jsonl", "hf", "trl-conversational"]
"""jsonl and hf: TRL's standard format (strings), as JSONL or `save_to_disk`; trl-conversational: TRL's
conversational format (message lists) as JSONL. See `tether.labeling.export`."""
CONVERSATIONAL: Final = "trl-conversational"
MANIFEST_NAME = "manifest.json"
SPLITS: Final = ("train", "test")
_RESERVED_MANIFEST_KEYS: Final = frozenset({"format", "columns", "rows", "rows_by_dimension"})


# --- writing ----------------------------------------------------------------------------------------------


def write_export(
    out_dir: Path,
    train: Sequence[PreferenceRow],
    test: Sequence[PreferenceRow],
    *,
    fmt: ExportFormat,
    manifest: Mapping[str, object],
    system: str | None = None,
) -> list[Path]:
    """Write the splits and manifest.json into `out_dir`, which must not exist or be empty; returns the files.

    jsonl: train.jsonl and test.jsonl, one object per row with the PreferenceRow fields (tuples as lists).
    hf: a `datasets.DatasetDict` saved with `save_to_disk`. trl-conversational: train.jsonl and test.jsonl
    with message lists, ``system`` (the spec's system prompt) first where a conversation has none. A
    conversation cannot be written in a standard format: that is an input error naming the rows.
    Everything is built in a hidden sibling directory and renamed into place, so a failure never leaves a
    half-written export behind.
    """
    if fmt not in get_args(ExportFormat):
        raise TetherInputError(
            f"unknown export format {fmt!r}; expected one of {', '.join(get_args(ExportFormat))}"
        )
    if fmt != CONVERSATIONAL:
        _refuse_conversations(train, test, fmt, system)
    check_free_dir(out_dir)
    # Serialize before touching the disk: a manifest that is not JSON fails with nothing written.
    manifest_text = (
        json.dumps(_full_manifest(manifest, fmt, train, test), indent=2, ensure_ascii=False) + "\n"
    )
    with staged_dir(out_dir) as staging:
        assert staging is not None  # enabled: this process writes
        if fmt == CONVERSATIONAL:
            _write_jsonl(staging, train, test, conversational=True, system=system)
        elif fmt == "jsonl":
            _write_jsonl(staging, train, test)
        else:
            _save_hf(staging, train, test)
        (staging / MANIFEST_NAME).write_text(manifest_text, encoding="utf-8")
    return sorted(path for path in out_dir.rglob("*") if path.is_file())


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


def _refuse_conversations(
    train: Sequence[PreferenceRow], test: Sequence[PreferenceRow], fmt: str, system: str | None
) -> None:
    if system:
        raise TetherInputError(
            f"the spec sets a system prompt, which the {fmt} format (plain strings) cannot carry; "
            f"export with --format {CONVERSATIONAL}"
        )
    tasks = [row.task_id for row in (*train, *test) if not is_single_turn(row.prompt)]
    if tasks:
        shown = ", ".join(map(str, tasks[:10])) + (" ..." if len(tasks) > 10 else "")
        raise TetherInputError(
            f"{len(tasks)} exported prompts are conversations (tasks {shown}), which the {fmt} format "
            f"(plain strings) would flatten; export with --format {CONVERSATIONAL}"
        )


def _row_record(
    row: PreferenceRow, *, conversational: bool = False, system: str | None = None
) -> dict[str, Any]:
    record = {name: list(value) if isinstance(value, tuple) else value for name, value in vars(row).items()}
    if conversational:
        record["prompt"] = as_dicts(with_system(row.prompt, system))
        record["chosen"] = [{"role": "assistant", "content": row.chosen}]
        record["rejected"] = [{"role": "assistant", "content": row.rejected}]
    else:
        record["prompt"] = last_user_turn(row.prompt)
    return record


def _write_jsonl(
    directory: Path,
    train: Sequence[PreferenceRow],
    test: Sequence[PreferenceRow],
    *,
    conversational: bool = False,
    system: str | None = None,
) -> None:
    for name, rows in (("train", train), ("test", test)):
        with (directory / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                record = _row_record(row, conversational=conversational, system=system)
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _features(conversational: bool = False) -> Features:
    from datasets import Features, List, Value

    message = {"role": Value("string"), "content": Value("string")}
    text: Any = List(message) if conversational else Value("string")
    return Features(
        {
            "prompt": text,
            "chosen": text,
            "rejected": text,
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


def _dataset(records: Sequence[Mapping[str, Any]], conversational: bool = False) -> Dataset:
    from datasets import Dataset

    # Column-wise with explicit features, so an empty split still has its columns and types.
    return Dataset.from_dict(
        {name: [record[name] for record in records] for name in COLUMNS}, features=_features(conversational)
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

        conversational = _manifest_format(path) == CONVERSATIONAL
        return DatasetDict(
            {name: _dataset(_read_jsonl(path / f"{name}.jsonl"), conversational) for name in SPLITS}
        )
    if not any(path.iterdir()):
        raise TetherInputError(f"{path}: directory is empty; create an export with `tether data export`")
    raise TetherInputError(
        f"{path}: not a Tether export (expected train.jsonl and test.jsonl, or a saved DatasetDict)"
    )


def load_rows(path: Path, split: Literal["train", "test"]) -> list[PreferenceRow]:
    """One split of the export at `path` as rows (the inverse of writing them)."""
    return [_record_row(record) for record in load_export(path)[split].to_list()]


def _manifest_format(path: Path) -> str | None:
    file = path / MANIFEST_NAME
    try:
        data = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
    except json.JSONDecodeError:
        return None  # the reader of the manifest itself reports it (`tether.reward.data.read_manifest`)
    return data.get("format") if isinstance(data, dict) else None


def _record_row(record: dict[str, Any]) -> PreferenceRow:
    # JSON and Arrow give lists where the row holds tuples (rater ids and names).
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in record.items()}
    if isinstance(record["prompt"], list):  # the conversational format: message lists
        values["prompt"] = conversation(record["prompt"], where=f"task {record['task_id']} prompt")
        values["chosen"], values["rejected"] = (
            record["chosen"][0]["content"],
            record["rejected"][0]["content"],
        )
    return PreferenceRow(**values)


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
