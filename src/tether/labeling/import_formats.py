"""Public preference data sets (HH-RLHF, TRL's preference format, UltraFeedback-binarized) as
checked pairs: the parsing layer of `tether data import-preferences`; storing them is the caller's.

Every format ends in the same `ImportedPair`: a prompt checked by `tether.conversation.conversation`
(an imported prompt obeys the rules every Tether prompt obeys) and two final assistant replies. A
row breaking a rule becomes one `RowProblem` naming its 1-based row and field, not an exception, so
the caller can refuse the file (exit 2) or skip bad rows (``--skip-invalid``) knowing them all. A
bad file (unreadable, unknown layout, several splits) is a `TetherInputError`. Files are read by
`datasets`, as these data sets are published: JSON Lines, JSON, Parquet, `save_to_disk` directories.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from tether.conversation import ROLES, Conversation, Message, Role, as_dicts, conversation
from tether.errors import TetherInputError
from tether.labeling.import_files import BATCH, read_rows

if TYPE_CHECKING:
    pass

FORMATS: Final = ("hh-rlhf", "trl", "ultrafeedback")
HUMAN: Final = "\n\nHuman:"
ASSISTANT: Final = "\n\nAssistant:"
NEEDS: Final[dict[str, str]] = {
    "hh-rlhf": "'chosen' and 'rejected' transcripts with '\\n\\nHuman:'/'\\n\\nAssistant:' turns",
    "trl": "'chosen' and 'rejected', with a 'prompt' (string or messages) or as full message lists",
    "ultrafeedback": "'prompt', 'chosen' and 'rejected' message lists, 'score_chosen', 'score_rejected'",
}
REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "hh-rlhf": ("chosen", "rejected"),
    "trl": ("chosen", "rejected"),
    "ultrafeedback": ("prompt", "chosen", "rejected", "score_chosen", "score_rejected"),
}


@dataclass(frozen=True)
class ImportedPair:
    row: int
    """1-based row number in the file: what a problem report or a duplicate warning names."""
    prompt: Conversation
    chosen: str
    rejected: str
    margin: float | None
    """UltraFeedback's score_chosen - score_rejected; None where the format has no scores."""
    tie: bool
    key: str
    """`pair_key`: the same for the same content, whichever format or row it came from."""


@dataclass(frozen=True)
class RowProblem:
    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, field '{self.field}': {self.message}"


@dataclass(frozen=True)
class ParsedFile:
    format: str
    pairs: list[ImportedPair]
    problems: list[RowProblem]
    """At most one per row (the first rule the row breaks)."""
    rows: int


class _Bad(Exception):
    """One row's first problem; caught by `parse_rows`, never seen by callers."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message)
        self.field, self.message = field, message


def pair_key(prompt: Conversation, chosen: str, rejected: str) -> str:
    """sha256 hex of the canonical JSON of the pair, so re-importing a row (from any format) is spotted."""
    canonical = {"prompt": as_dicts(prompt), "chosen": chosen, "rejected": rejected}
    text = json.dumps(canonical, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- formats ----------------------------------------------------------------------------------------------


def detect_format(columns: Collection[str], first_row: Mapping[str, Any]) -> str:
    """The format of a file with these columns and this first row (what ``--format auto`` means).

    UltraFeedback is tried first: its rows also have a 'prompt', which alone means TRL."""
    if {"score_chosen", "score_rejected"} <= set(columns):
        return "ultrafeedback"
    chosen, rejected = first_row.get("chosen"), first_row.get("rejected")
    if "prompt" in columns or (isinstance(chosen, list) and isinstance(rejected, list)):
        return "trl"
    if isinstance(chosen, str) and isinstance(rejected, str) and HUMAN in chosen and HUMAN in rejected:
        return "hh-rlhf"
    needs = "; ".join(f"{name} needs {what}" for name, what in NEEDS.items())
    found = ", ".join(repr(c) for c in columns) or "none"
    raise TetherInputError(f"cannot tell the format: columns found: {found}. {needs}; or pass --format")


def _check_format(fmt: str) -> None:
    if fmt not in (*FORMATS, "auto"):
        raise TetherInputError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)} or auto")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _text(row: Mapping[str, Any], field: str, what: str) -> str:
    value = row.get(field)
    if value is None:
        raise _Bad(field, "missing")
    if not isinstance(value, str):
        raise _Bad(field, f"expected {what}, got {_kind(value)}")
    return value


def _messages(value: Any, field: str) -> tuple[Message, ...]:
    """A list of {role, content} as messages, unchecked as a conversation (it ends with a reply)."""
    if value is None:
        raise _Bad(field, "missing")
    if not isinstance(value, list | tuple):
        raise _Bad(field, f"expected a list of messages, got {_kind(value)}")
    out = []
    for i, raw in enumerate(value):
        if not isinstance(raw, Mapping):
            raise _Bad(f"{field}[{i}]", f"expected a message with 'role' and 'content', got {_kind(raw)}")
        role, content = raw.get("role"), raw.get("content")
        if role not in ROLES:
            raise _Bad(f"{field}[{i}].role", f"{role!r} is not one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise _Bad(f"{field}[{i}].content", f"expected a string, got {_kind(content)}")
        out.append(Message(cast(Role, role), content))
    return tuple(out)


def _checked(prompt: str | Sequence[Any], where: str) -> Conversation:
    """`conversation()`, its error turned into a row problem; its messages start 'field[i].part: '."""
    try:
        return conversation(prompt, where=where)
    except TetherInputError as exc:
        field, sep, message = str(exc).partition(": ")
        raise (_Bad(field, message) if sep else _Bad(where, str(exc))) from exc


def _split_last(chosen: tuple[Message, ...], rejected: tuple[Message, ...]) -> tuple[Conversation, str, str]:
    """(prompt, chosen reply, rejected reply) of two full conversations: each ends with its reply,
    and what comes before it is the prompt, which must be the same on both sides."""
    for field, messages in (("chosen", chosen), ("rejected", rejected)):
        if not messages or messages[-1].role != "assistant":
            raise _Bad(field, "does not end with an assistant turn (the reply)")
        if not messages[-1].content.strip():
            raise _Bad(field, "the final assistant turn (the reply) is blank")
    if chosen[:-1] != rejected[:-1]:
        at = next((i for i, (a, b) in enumerate(zip(chosen, rejected, strict=False)) if a != b), None)
        detail = f"message {at} differs" if at is not None else "one has more messages"
        message = (
            f"chosen and rejected do not share the conversation before their last assistant turn ({detail})"
        )
        raise _Bad("rejected", message)
    return _checked(chosen[:-1], "chosen"), chosen[-1].content, rejected[-1].content


def _pair(
    row: int, prompt: Conversation, chosen: str, rejected: str, margin: float | None = None
) -> ImportedPair:
    # Replies equal but for surrounding whitespace teach nothing either; the stored text stays as read.
    if chosen.strip() == rejected.strip():
        raise _Bad("rejected", "identical to chosen; a preference needs two different replies")
    key = pair_key(prompt, chosen, rejected)
    return ImportedPair(row, prompt, chosen, rejected, margin, margin == 0.0, key)


def _hh_turns(text: str, field: str) -> tuple[Message, ...]:
    """An HH-RLHF transcript's turns, split on '\\n\\nHuman:' and '\\n\\nAssistant:' only: a bare
    'Human:' inside a turn is text (people quote dialogues). `str.split` keeps it linear."""
    preamble, *humans = text.split(HUMAN)
    before, *stray = preamble.split(ASSISTANT)
    if before.strip():
        raise _Bad(field, f"text before the first '\\n\\nHuman:' marker ({before.strip()[:40]!r})")
    turns = [Message("assistant", _turn_text(part)) for part in stray]
    for human in humans:
        user, *replies = human.split(ASSISTANT)
        turns.append(Message("user", _turn_text(user)))
        turns.extend(Message("assistant", _turn_text(part)) for part in replies)
    if not turns:
        raise _Bad(field, "no '\\n\\nHuman:' turn in the transcript")
    return tuple(turns)


def _turn_text(part: str) -> str:
    # The one space after "Human:"/"Assistant:" is layout, as is whitespace before the next marker.
    return (part[1:] if part.startswith(" ") else part).rstrip()


def _hh_row(row: int, values: Mapping[str, Any]) -> ImportedPair:
    """HH-RLHF: two full transcripts; message indices in problems count the transcript's turns."""
    what = "a transcript string"
    chosen = _hh_turns(_text(values, "chosen", what), "chosen")
    rejected = _hh_turns(_text(values, "rejected", what), "rejected")
    return _pair(row, *_split_last(chosen, rejected))


def _trl_reply(value: Any, field: str) -> str:
    """A reply after an explicit prompt: a string, or a list of exactly one assistant message."""
    if isinstance(value, str):
        text = value
    else:
        messages = _messages(value, field)
        if len(messages) != 1 or messages[0].role != "assistant":
            roles = ", ".join(m.role for m in messages) or "none"
            raise _Bad(field, f"expected exactly one assistant message after the prompt, got: {roles}")
        text = messages[0].content
    if not text.strip():
        raise _Bad(field, "the reply is blank")
    return text


_AMBIGUOUS: Final = (
    "missing: a string row without 'prompt' is ambiguous; add a prompt column or use message lists"
)


def _trl_row(row: int, values: Mapping[str, Any]) -> ImportedPair:
    """TRL's preference format: an explicit prompt (a string is one user message), or none, where
    'chosen' and 'rejected' are full conversations whose shared part before the reply is the prompt.

    Without a prompt, string rows are refused: TRL takes their longest common prefix as the prompt,
    which cuts into the replies whenever they start alike ("The answer is 4" / "The answer is 5"
    give the prompt "...The answer is "), silently storing a wrong pair."""
    prompt = values.get("prompt")
    if prompt is None:
        chosen, rejected = values.get("chosen"), values.get("rejected")
        if isinstance(chosen, str) or isinstance(rejected, str):
            raise _Bad("prompt", _AMBIGUOUS)
        return _pair(row, *_split_last(_messages(chosen, "chosen"), _messages(rejected, "rejected")))
    if not isinstance(prompt, str | list | tuple):
        raise _Bad("prompt", f"expected a string or a list of messages, got {_kind(prompt)}")
    conv = _checked(prompt, "prompt")
    return _pair(
        row, conv, _trl_reply(values.get("chosen"), "chosen"), _trl_reply(values.get("rejected"), "rejected")
    )


def _score(values: Mapping[str, Any], field: str) -> float:
    value = values.get(field)
    if value is None:
        raise _Bad(field, "missing")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(field, f"expected a number, got {_kind(value)}")
    if not math.isfinite(value):
        raise _Bad(field, f"expected a finite number, got {value}")
    return float(value)


def _ultrafeedback_row(row: int, values: Mapping[str, Any]) -> ImportedPair:
    """UltraFeedback-binarized: full message lists plus scores; the prompt is the lists' shared part
    before the reply (normally the lone user message), whose last user turn must be 'prompt'."""
    prompt = _text(values, "prompt", "a string")
    messages = _messages(values.get("chosen"), "chosen"), _messages(values.get("rejected"), "rejected")
    conv, chosen, rejected = _split_last(*messages)
    if conv[-1].content.strip() != prompt.strip():
        raise _Bad("prompt", "differs from the last user turn of 'chosen' and 'rejected'")
    high, low = _score(values, "score_chosen"), _score(values, "score_rejected")
    if high < low:
        raise _Bad("score_chosen", f"chosen scored below rejected ({high:g} < {low:g})")
    return _pair(row, conv, chosen, rejected, margin=high - low)


_PARSERS: Final[dict[str, Callable[[int, Mapping[str, Any]], ImportedPair]]] = {
    "hh-rlhf": _hh_row,
    "trl": _trl_row,
    "ultrafeedback": _ultrafeedback_row,
}


def parse_rows(
    rows: Iterable[Mapping[str, Any]], fmt: str, *, progress: Callable[[int], None] | None = None
) -> ParsedFile:
    """Every row as a pair or a problem. ``fmt`` 'auto' looks at the first row's keys.

    ``progress`` hears the number of rows read so far, every `BATCH` rows and once at the end."""
    _check_format(fmt)
    iterator = iter(rows)
    if fmt == "auto":
        first = next(iterator, None)
        fmt = detect_format(list(first or {}), first or {})
        iterator = chain([first] if first is not None else [], iterator)
    parse = _PARSERS[fmt]
    pairs: list[ImportedPair] = []
    problems: list[RowProblem] = []
    count = 0
    for count, values in enumerate(iterator, start=1):
        try:
            pairs.append(parse(count, values))
        except _Bad as bad:
            problems.append(RowProblem(count, bad.field, bad.message))
        if progress is not None and count % BATCH == 0:
            progress(count)
    if progress is not None and count % BATCH:
        progress(count)
    return ParsedFile(fmt, pairs, problems, count)


def parse_file(path: Path, fmt: str = "auto", *, progress: Callable[[int], None] | None = None) -> ParsedFile:
    """`read_rows` then `parse_rows`. A file lacking a column its format needs is refused whole (a
    `TetherInputError`), rather than reported as the same problem on every row."""
    _check_format(fmt)
    rows = read_rows(path)
    try:
        resolved = detect_format(rows.columns, rows.first()) if fmt == "auto" else fmt
    except TetherInputError as exc:
        raise TetherInputError(f"{path}: {exc}") from exc
    missing = [c for c in REQUIRED[resolved] if c not in rows.columns]
    if missing:
        raise TetherInputError(
            f"{path}: no column {', '.join(map(repr, missing))}; {resolved} needs {NEEDS[resolved]} "
            f"(columns found: {', '.join(map(repr, rows.columns))})"
        )
    return parse_rows(rows, resolved, progress=progress)


# --- synthetic data for benchmarks ------------------------------------------------------------------------

_VOCABULARY: Final = (
    "the a to of and is in that it for you can I be with how what this on are your not do have if "
    "or but as they there would should help make time way people some good more about when one like "
    "recipe garden python money sleep email dog travel history music water bread code budget plan"
)
_OPENERS: Final = ("How do I", "Can you explain", "What is the best way to", "Why does", "Tell me about")


def synthetic_hh_rows(n: int, seed: int) -> Iterator[dict[str, str]]:
    """``n`` HH-RLHF-shaped rows (1-3 human turns, replies of 1-8 sentences), the same for a seed:
    load for benchmarks without the real data set. Turns are drawn from pools of sentences made
    once per call, so generating 161k rows costs a fraction of parsing them."""
    rng = random.Random(seed)
    words = _VOCABULARY.split()

    def phrase(low: int, high: int) -> str:
        return " ".join(rng.choices(words, k=rng.randint(low, high)))

    sentences = [phrase(4, 18).capitalize() + rng.choice(".!?.") for _ in range(2048)]
    questions = [f"{rng.choice(_OPENERS)} {phrase(3, 12)}?" for _ in range(512)]
    for _ in range(n):
        replies = [" ".join(rng.choices(sentences, k=rng.randint(1, 8))) for _ in range(rng.randint(2, 4))]
        history = (
            "".join(f"{HUMAN} {rng.choice(questions)}{ASSISTANT} {reply}" for reply in replies[:-2])
            + f"{HUMAN} {rng.choice(questions)}"
        )
        chosen, rejected = replies[-2], replies[-1]
        if chosen == rejected:
            rejected += " Sorry, I am not sure."
        yield {"chosen": f"{history}{ASSISTANT} {chosen}", "rejected": f"{history}{ASSISTANT} {rejected}"}
