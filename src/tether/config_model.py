"""Stage configs as pydantic dataclasses: the field's type and bounds are the one source of its rules.

`config` turns a frozen dataclass whose fields carry `Annotated[..., Field(ge=..)]` bounds and
`Literal` choices into a validated one, and keeps Tether's messages: a bad value raises a plain
ValueError naming the field, what it allows and what it got (``batch_size must be at least 1, got
0``; ``algo must be one of ppo, rloo, got 'trpo'``), every problem at once, which the CLI turns into an
exit-2 input error. Rules that tie fields together stay in the class's ``__post_init__``, which runs
after the fields are valid; a ValueError raised there reads the same.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

T = TypeVar("T")

CONFIG = ConfigDict(extra="forbid", arbitrary_types_allowed=False)
BOUND_KEYS = ("ge", "gt", "le", "lt")


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, Field))
def config(cls: type[T]) -> type[T]:
    """`cls` as a frozen pydantic dataclass whose construction raises ValueError with our messages."""
    validated: Any = pydantic_dataclass(frozen=True, config=CONFIG)(cls)
    generated: Callable[..., None] = validated.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            generated(self, *args, **kwargs)
        except ValidationError as err:
            raise ValueError("; ".join(problems(validated, err))) from None

    __init__.__doc__ = generated.__doc__
    validated.__init__ = __init__
    return validated


def _bounds(cls: Any, name: str) -> dict[str, float]:
    """The numeric bounds (ge, gt, le, lt) that the field `name` of a pydantic dataclass declares."""
    info = getattr(cls, "__pydantic_fields__", {}).get(name)
    found: dict[str, float] = {}
    for item in getattr(info, "metadata", []) or []:
        for key in BOUND_KEYS:
            value = getattr(item, key, None)
            if value is not None:
                found[key] = value
    return found


def _fmt(value: float) -> str:
    return f"{value:g}"


def bounds_text(bounds: dict[str, float]) -> str:
    """What the bounds allow, in words.

    >>> bounds_text({"ge": 1})
    'must be at least 1'
    >>> bounds_text({"ge": 0, "le": 1})
    'must be in [0, 1]'
    >>> bounds_text({"gt": 0})
    'must be positive'
    """
    low = ("[", bounds["ge"]) if "ge" in bounds else ("(", bounds["gt"]) if "gt" in bounds else None
    high = ("]", bounds["le"]) if "le" in bounds else (")", bounds["lt"]) if "lt" in bounds else None
    if low and high:
        return f"must be in {low[0]}{_fmt(low[1])}, {_fmt(high[1])}{high[0]}"
    if low:
        if low == ("[", 0):
            return "must be non-negative"
        if low == ("(", 0):
            return "must be positive"
        return f"must be at least {_fmt(low[1])}" if low[0] == "[" else f"must be greater than {_fmt(low[1])}"
    if high:
        return f"must be at most {_fmt(high[1])}" if high[0] == "]" else f"must be less than {_fmt(high[1])}"
    return "is out of range"


def problems(cls: Any, err: ValidationError) -> list[str]:
    """One message per problem: the field, what it allows, what it got."""
    out = []
    for e in err.errors(include_url=False):
        name = ".".join(str(p) for p in e["loc"]) or "config"
        got = e.get("input")
        kind = e["type"]
        if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            # The field's declared bounds say the whole range; an optional field's sit inside its union,
            # where the error's own context still names the bound it missed.
            bounds = _bounds(cls, name) or {k: v for k, v in e.get("ctx", {}).items() if k in BOUND_KEYS}
            out.append(f"{name} {bounds_text(bounds)}, got {got}")
        elif kind == "literal_error":
            allowed = ", ".join(re.findall(r"'([^']*)'", str(e.get("ctx", {}).get("expected", ""))))
            out.append(f"{name} must be one of {allowed}, got {got!r}")
        elif kind == "value_error":  # a rule of __post_init__: its own words
            out.append(str(e["msg"]).removeprefix("Value error, "))
        elif kind in ("unexpected_keyword_argument", "extra_forbidden"):
            out.append(f"{name} is not a setting")
        else:
            out.append(f"{name}: {e['msg'].lower()}, got {got!r}")
    return out
