"""Reading a preference file through `datasets`: JSON Lines, JSON, Parquet, or a directory written by
`Dataset.save_to_disk` (one split), with errors that name the file and, for JSON, the line.

Split from `tether.labeling.import_formats`, which turns the rows into checked pairs.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from tether.errors import TetherInputError

if TYPE_CHECKING:
    from datasets import Dataset

BATCH: Final = 1000
"""Rows taken from the Arrow table at a time, and how often `progress` hears of them."""
ACCEPTED_KINDS: Final = ".jsonl, .json, .parquet, or a directory written by Dataset.save_to_disk"


class FileRows:
    """A file's rows as `read_rows` gives them: sized, with its columns, iterated a batch at a time
    (indexing an Arrow table row by row is what makes a 161k-row import slow)."""

    def __init__(self, dataset: Dataset) -> None:
        self._dataset = dataset
        self.columns: tuple[str, ...] = tuple(dataset.column_names)

    def __len__(self) -> int:
        return len(self._dataset)

    def first(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._dataset[0])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self._dataset.iter(batch_size=BATCH):
            names = list(batch)
            yield from (dict(zip(names, values, strict=True)) for values in zip(*batch.values(), strict=True))


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """No progress bars and no log lines from `datasets`: a failure is reported once, by Tether.
    The caller's settings come back afterwards."""
    import datasets

    bars, verbosity = datasets.is_progress_bar_enabled(), datasets.logging.get_verbosity()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(logging.CRITICAL)
    try:
        yield
    finally:
        datasets.logging.set_verbosity(verbosity)
        if bars:
            datasets.enable_progress_bars()


def read_rows(path: Path) -> FileRows:
    """The rows of a .jsonl/.json/.parquet file or a saved dataset directory, via `datasets`.

    Raises `TetherInputError` naming the file when it is missing, of another kind, unreadable,
    empty, or a DatasetDict with other than one split (which split to import is the user's call)."""
    if not path.exists():
        raise TetherInputError(f"{path}: no such file or directory")
    with _quiet_datasets():
        dataset = _load_saved(path) if path.is_dir() else _load_file(path)
    if len(dataset) == 0:
        raise TetherInputError(f"{path}: the file has no rows")
    return FileRows(dataset)


def _load_file(path: Path) -> Dataset:
    from datasets import load_dataset

    kind = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}.get(path.suffix.lower())
    if kind is None:
        raise TetherInputError(f"{path}: not a kind of file import reads ({ACCEPTED_KINDS})")
    # A temporary cache: `datasets` writes Arrow files while loading, and they belong neither next to
    # the user's file nor in a shared cache; keep_in_memory keeps the table once the cache is gone.
    with tempfile.TemporaryDirectory(prefix="tether-import-") as cache:
        try:
            return load_dataset(
                kind, data_files=str(path), split="train", keep_in_memory=True, cache_dir=cache
            )
        except Exception as exc:  # datasets and pyarrow raise many types; all mean "cannot read it"
            where = _first_json_error(path) if kind == "json" else None
            reason = where or _innermost(exc)
            raise TetherInputError(f"{path}: cannot read it as {kind.upper()}: {reason}") from exc


def _innermost(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc) or type(exc).__name__


def _first_json_error(path: Path) -> str | None:
    """'line N: reason' for the first malformed line: `datasets` counts rows within a block of the
    file, not lines, so on failure (only then) the file is re-read to name the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return str(exc)
    if not text.strip():
        return "the file is empty"
    if text.lstrip().startswith("["):  # one JSON array: its decoder knows the line
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            return f"line {exc.lineno}: {exc.msg}"
        return None
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            value = json.loads(line) if line.strip() else {}
        except json.JSONDecodeError as exc:
            return f"line {number}: {exc.msg}"
        if not isinstance(value, dict):
            return f"line {number}: not a JSON object"
    return None


def _load_saved(path: Path) -> Dataset:
    from datasets import DatasetDict, load_from_disk

    try:
        loaded = load_from_disk(str(path))
    except FileNotFoundError as exc:
        raise TetherInputError(
            f"{path}: a directory, but not one written by Dataset.save_to_disk ({ACCEPTED_KINDS})"
        ) from exc
    if isinstance(loaded, DatasetDict):
        if len(loaded) != 1:
            raise TetherInputError(
                f"{path}: a DatasetDict with splits {', '.join(loaded) or '(none)'}; import reads exactly "
                "one split: save the one to import on its own (dataset_dict['train'].save_to_disk(...))"
            )
        (loaded,) = loaded.values()
    return cast("Dataset", loaded)
