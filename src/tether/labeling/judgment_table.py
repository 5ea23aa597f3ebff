"""The columnar judgment table the rater report runs on: one row per judgment, checked once.

Kept apart from the metrics so that the table's validation and the figures can each be read
on their own; `tether.labeling.metrics` re-exports `JudgmentTable`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tether.errors import TetherInputError

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

TIE = 2

COLUMNS: dict[str, tuple[str, type[np.generic], tuple[float, float] | None]] = {
    "rater": ("iu", np.int64, None),  # range set by rater_names
    "item": ("iu", np.int64, None),
    "dimension": ("iu", np.int64, None),  # range set by dimension_names
    "choice": ("iu", np.int8, (0, 2)),
    "chose_left": ("b", np.bool_, None),
    "longer": ("iu", np.int8, (-1, 1)),
    "seconds": ("iuf", np.float64, (0, np.inf)),
    "rationale_len": ("iu", np.int64, (0, np.inf)),
    "rationale_id": ("iu", np.int64, None),
    "anchor_correct": ("iu", np.int8, (-1, 1)),
    "overlap": ("b", np.bool_, None),
    "practice": ("b", np.bool_, None),
}
ROW_DEFAULTS = {"chose_left": False, "longer": -1, "seconds": 1.0, "rationale_len": 0, "anchor_correct": -1}
ROW_DEFAULTS |= {"overlap": False, "practice": False}


class JudgmentTableError(TetherInputError, ValueError):
    """A JudgmentTable column is malformed; the message names the column and the first bad row."""


def _require(column: str, bad: BoolArray, what: str) -> None:
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise JudgmentTableError(f"JudgmentTable column {column!r}: {what} (first bad row: {row})")


def _checked_shape(
    name: str, column: object, kinds: str, dtype: type[np.generic], n: int
) -> npt.NDArray[Any]:
    if not (isinstance(column, np.ndarray) and column.ndim == 1 and column.dtype.kind in kinds):
        got = getattr(column, "dtype", type(column).__name__)
        raise JudgmentTableError(
            f"JudgmentTable column {name!r}: expected a 1-D array castable to {np.dtype(dtype)}, got {got}"
        )
    if len(column) != n:
        raise JudgmentTableError(f"JudgmentTable column {name!r}: length {len(column)}, expected {n}")
    return column


@dataclass(frozen=True, eq=False)  # eq=False: elementwise array comparison has no single truth value
class JudgmentTable:
    """One row per judgment, as parallel columns, checked and stored as the dtypes below."""

    rater: IntArray  # (N,) index into rater_names
    item: IntArray  # (N,) task id; any integers
    dimension: IntArray  # (N,) index into dimension_names; one dimension per item
    choice: npt.NDArray[np.int8]  # (N,) 0 = response A, 1 = response B, 2 = tie
    chose_left: BoolArray  # (N,) the rater picked the response displayed on the left; False for ties
    longer: npt.NDArray[np.int8]  # (N,) side longer by more than 20% (0 = A, 1 = B), -1 if within 20%
    seconds: FloatArray  # (N,) time spent on the judgment
    rationale_len: IntArray  # (N,) characters in the rationale
    rationale_id: IntArray  # (N,) id of the rationale text; equal ids mean identical text
    anchor_correct: npt.NDArray[np.int8]  # (N,) 1/0 right/wrong on a clear-cut anchor, -1 otherwise
    overlap: BoolArray  # (N,) an overlapped live task (several raters on purpose); one value per item
    rater_names: list[str]
    dimension_names: list[str]
    practice: BoolArray | None = None
    """(N,) a calibration judgment, made with expert feedback: left out of the bias figures,
    because a rater learning the rubric on anchors is not yet showing their habits. None: all False."""

    def __post_init__(self) -> None:
        n = int(np.size(self.rater))
        if self.practice is None:
            object.__setattr__(self, "practice", np.zeros(n, dtype=bool))
        index_ranges = {
            "rater": (0, len(self.rater_names) - 1),
            "dimension": (0, len(self.dimension_names) - 1),
        }
        for name, (kinds, dtype, allowed) in COLUMNS.items():
            column = _checked_shape(name, getattr(self, name), kinds, dtype, n)
            if (bounds := index_ranges.get(name, allowed)) is not None:
                # "Not inside" rather than "outside", so that nan fails too.
                inside = (column >= bounds[0]) & (column <= bounds[1])
                _require(name, ~inside, f"values must lie in [{bounds[0]}, {bounds[1]}]")
            # Frozen, but normalizing dtypes once here keeps every later computation on known types.
            object.__setattr__(self, name, np.ascontiguousarray(column, dtype=dtype))
        for names in ("rater_names", "dimension_names"):
            if len(set(getattr(self, names))) != len(getattr(self, names)):
                raise JudgmentTableError(
                    f"JudgmentTable {names}: names repeat, so results would be ambiguous"
                )
        _require("seconds", np.isinf(self.seconds), "must be finite")
        _require("chose_left", self.chose_left & (self.choice == TIE), "must be False for ties")
        self._check_item_constant()

    def _check_item_constant(self) -> None:
        # Per-dimension alpha and the overlap filter assume these are properties of the item.
        order = np.argsort(self.item, kind="stable")
        same_item = self.item[order][1:] == self.item[order][:-1]
        for name in ("dimension", "overlap"):
            column = getattr(self, name)[order]
            bad = np.zeros(len(order), dtype=bool)
            bad[order[1:]] = same_item & (column[1:] != column[:-1])
            _require(name, bad, "differs between judgments of the same item")

    @classmethod
    def from_rows(
        cls, rows: Iterable[Mapping[str, Any]], *, rater_names: list[str], dimension_names: list[str]
    ) -> JudgmentTable:
        """A table from dicts (for tests and small tools; loops in Python). Each row needs `rater` (a name),
        `item` and `choice`; `dimension` (a name) defaults to the first, rationale_id to one per row, the
        rest to chose_left=False, longer=-1, seconds=1.0, rationale_len=0, anchor_correct=-1, overlap=False.
        """
        full: list[dict[str, Any]] = []
        for index, row in enumerate(rows):
            if unknown := sorted(set(row) - set(COLUMNS)):
                raise JudgmentTableError(
                    f"JudgmentTable.from_rows: row {index} has unknown columns {unknown}"
                )
            values = {"dimension": dimension_names[0], "rationale_id": -1 - index, **ROW_DEFAULTS, **row}
            values["rater"] = rater_names.index(values["rater"])
            values["dimension"] = dimension_names.index(values["dimension"])
            full.append(values)
        arrays = {name: np.array([r[name] for r in full], dtype=spec[1]) for name, spec in COLUMNS.items()}
        return cls(**arrays, rater_names=list(rater_names), dimension_names=list(dimension_names))
