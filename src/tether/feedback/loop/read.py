"""Tolerant readers for stored JSON: a missing key, a None or a value of the wrong type is "no value".

The loop's step results are stored as JSON, and an iteration stopped or killed early, or recorded
by an older Tether, may lack keys. The typed results' `from_dict` read through these, so that the
tolerance lives in one place and everything downstream (the report, the diagnosis, the demo's
summary) reads typed fields.

    >>> num("0.5"), num(float("nan")), num(True), num(2)
    (None, None, None, 2.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def num(value: Any) -> float | None:
    """A finite float, or None for anything else (None, strings, NaN, booleans)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def count(value: Any) -> int:
    number = num(value)
    return int(number) if number is not None else 0


def text(value: Any) -> str | None:
    return None if value is None else str(value)


def flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def mapping(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def records(value: Any) -> list[dict[str, Any]]:
    """The mappings of a list, skipping anything else."""
    if not isinstance(value, list | tuple):
        return []
    return [mapping(item) for item in value if isinstance(item, Mapping)]


def strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(str(v) for v in value if v is not None)


def counts(value: Any) -> dict[str, int]:
    return {k: count(v) for k, v in mapping(value).items()}


def floats(value: Any) -> dict[str, float]:
    return {k: v for k, v in ((k, num(v)) for k, v in mapping(value).items()) if v is not None}


def first(data: Mapping[str, Any], *keys: str) -> Any:
    """The value of the first key present and not None: one field under its old and new names."""
    return next((data[k] for k in keys if data.get(k) is not None), None)
