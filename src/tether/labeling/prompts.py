"""`tether data import-prompts`: add tagged prompts to the pool from JSONL, all or nothing.

Each line: ``{"text": "...", "dimension": "safety", "stratum": "adversarial"}``, or, for a
conversation, ``"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]`` in
place of ``"text"`` (the rules of `tether.conversation`: the last message is the user's). Optionally
``"key"`` (default: a hash of the content, so re-importing is idempotent), ``"split"`` (`pool` or
`eval`, default `pool`) and ``"meta"`` (an object).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tether.conversation import (
    Prompt,
    conversation,
    is_single_turn,
    last_user_turn,
    prompt_key,
    stored_messages,
)
from tether.errors import TetherInputError
from tether.project import Project
from tether.store import NewPrompt, add_prompts
from tether.store.prompts import SPLITS, STRATA

ALLOWED = {"text", "messages", "dimension", "stratum", "key", "split", "meta"}
MAX_TEXT = 20_000


def _prompt(data: Any, dimensions: list[str]) -> NewPrompt:
    if not isinstance(data, dict):
        raise TetherInputError("must be a JSON object")
    unknown = sorted(set(data) - ALLOWED)
    if unknown:
        raise TetherInputError(f"unknown keys {', '.join(unknown)}")
    prompt = _content(data)
    text = last_user_turn(prompt)
    if data.get("dimension") not in dimensions:
        raise TetherInputError(f"'dimension' must be one of the spec's: {', '.join(dimensions)}")
    stratum = data.get("stratum", "routine")
    if stratum not in STRATA:
        raise TetherInputError(f"'stratum' must be one of {', '.join(STRATA)}")
    split = data.get("split", "pool")
    if split not in ("pool", "eval"):
        raise TetherInputError(f"'split' must be pool or eval (the {SPLITS[-1]} split is Tether's own)")
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise TetherInputError("'meta' must be an object")
    # A single turn keeps the key it always had (a hash of its text), so old imports stay idempotent.
    digest = (
        hashlib.sha256(text.encode("utf-8")).hexdigest() if is_single_turn(prompt) else prompt_key(prompt)
    )
    key = data.get("key") or "p-" + digest[:16]
    return NewPrompt(
        key=str(key),
        text=text,
        messages=stored_messages(prompt),
        dimension=data["dimension"],
        stratum=stratum,
        split=split,
        source="import",
        meta=meta,
    )


def _content(data: dict[str, Any]) -> Prompt:
    """The line's prompt: its ``text`` (one user message) or its ``messages``, exactly one of them."""
    if ("text" in data) == ("messages" in data):
        raise TetherInputError("'text' (a string) or 'messages' (a conversation): give exactly one of them")
    if "messages" in data:
        if not isinstance(data["messages"], list):
            raise TetherInputError("'messages' must be a list of {role, content} objects")
        messages = conversation(data["messages"], where="messages")
        if sum(len(m.content) for m in messages) > MAX_TEXT:
            raise TetherInputError(f"'messages' hold more than {MAX_TEXT} characters")
        return messages
    text = data["text"]
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise TetherInputError(f"'text' must be a non-empty string of at most {MAX_TEXT} characters")
    return text


def import_prompts(project: Project, path: Path) -> tuple[int, int]:
    """(new, already present). Every line is checked before anything is written."""
    if not path.is_file():
        raise TetherInputError(f"{path}: file not found")
    prompts, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            prompts.append(_prompt(json.loads(line), project.spec.dimension_ids))
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not valid JSON ({exc.msg})")
        except TetherInputError as exc:
            problems.append(f"line {number}: {exc}")
    if problems:
        raise TetherInputError(
            f"{path}: {len(problems)} bad line(s); nothing was imported\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    with project.store.session() as session:
        added = add_prompts(
            session, project_id=project.project_id, prompts=prompts, spec_hash=project.spec_hash
        )
    return added, len(prompts) - added
