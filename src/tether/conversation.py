"""A prompt is a conversation: messages with roles, an optional system message first, the last one
from the user. The model's reply is the next assistant turn.

A plain string is one user message, so every prompt that was a string keeps its meaning, and its
text is still the prompt where a single string is expected (`last_user_turn`: what `prompt` means in
the API, the reports and the sandbox's grader). The rules a conversation obeys, checked once by
`conversation()`:

- roles are ``system``, ``user`` and ``assistant``; a system message may come first only;
- after it, turns alternate ``user``/``assistant``, starting and ending with ``user`` (chat
  templates of Llama-2, Mistral and Gemma refuse anything else, so Tether refuses it up front);
- every message's content is a non-blank string.

The project's system prompt (the spec's ``generation.system_prompt``) is applied by `with_system`,
in the one formatting path (`tether.hf`): a conversation with its own system message keeps it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from tether.errors import TetherInputError

Role = Literal["system", "user", "assistant"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


Conversation = tuple[Message, ...]
Prompt = str | Conversation
"""What the formatting path takes: a string (one user message) or a checked conversation."""


def _message(raw: Any, where: str) -> Message:
    if isinstance(raw, Message):
        return raw
    if not isinstance(raw, Mapping):
        raise TetherInputError(f"{where}: a message is an object with 'role' and 'content'")
    role, content = raw.get("role"), raw.get("content")
    if role not in ROLES:
        raise TetherInputError(f"{where}.role: {role!r} is not one of {', '.join(ROLES)}")
    if not isinstance(content, str):
        raise TetherInputError(f"{where}.content: expected a string")
    return Message(cast(Role, role), content)


def conversation(prompt: str | Sequence[Any], *, where: str = "prompt") -> Conversation:
    """``prompt`` as a checked conversation (the module's rules); a string is one user message.

    Raises `TetherInputError` naming ``where`` and the message index of the first problem."""
    if isinstance(prompt, str):
        messages: Conversation = (Message("user", prompt),)
    else:
        messages = tuple(_message(m, f"{where}[{i}]") for i, m in enumerate(prompt))
    if not messages:
        raise TetherInputError(f"{where}: a conversation needs at least one user message")
    turns = messages[1:] if messages[0].role == "system" else messages
    for i, m in enumerate(messages):
        if not m.content.strip():
            raise TetherInputError(f"{where}[{i}].content: the {m.role} message is blank")
    offset = len(messages) - len(turns)
    for i, m in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if m.role != expected:
            raise TetherInputError(
                f"{where}[{i + offset}].role: expected '{expected}' here, got '{m.role}' (after an "
                "optional system message, turns alternate user/assistant)"
            )
    if not turns or turns[-1].role != "user":
        raise TetherInputError(f"{where}: the last message must be from the user")
    return messages


def last_user_turn(prompt: Prompt) -> str:
    """The text of the prompt's last user message (the whole prompt, for a string)."""
    return prompt if isinstance(prompt, str) else prompt[-1].content


def is_single_turn(prompt: Prompt) -> bool:
    """True for a string or a lone user message: what every prompt was before conversations."""
    return isinstance(prompt, str) or (len(prompt) == 1 and prompt[0].role == "user")


def _messages(prompt: Prompt) -> Conversation:
    # Unchecked on purpose: formatting a string never fails, as it never did before conversations.
    return (Message("user", prompt),) if isinstance(prompt, str) else prompt


def with_system(prompt: Prompt, system: str | None) -> Conversation:
    """The conversation that the model reads: ``system`` first unless it has a system message."""
    conv = _messages(prompt)
    if system and conv[0].role != "system":
        return (Message("system", system), *conv)
    return conv


def essential(prompt: Conversation) -> Conversation:
    """What no cut may remove: the system message, if any, and the last user turn."""
    return (*prompt[:1], prompt[-1]) if prompt[0].role == "system" and len(prompt) > 1 else prompt[-1:]


def as_dicts(prompt: Prompt) -> list[dict[str, str]]:
    """``[{"role": …, "content": …}, …]``: chat templates', TRL's and the JSON API's form."""
    return [{"role": m.role, "content": m.content} for m in _messages(prompt)]


def stored_messages(prompt: Prompt) -> list[dict[str, str]] | None:
    """What the store keeps beside the prompt's text: None for a single user turn (the text alone
    says it), else every message."""
    return None if is_single_turn(prompt) else as_dicts(prompt)


def from_stored(text: str, messages: Sequence[Mapping[str, Any]] | None) -> Prompt:
    """The prompt a stored row holds: its text, or its conversation when it has messages."""
    return text if not messages else conversation(list(messages), where="stored prompt")


def canonical_messages(messages: Sequence[Mapping[str, Any]] | None) -> str:
    """Stored messages as one canonical string ("" for none): what content keys and lookups compare."""
    return json.dumps(list(messages), ensure_ascii=False, sort_keys=True) if messages else ""


def prompt_key(prompt: Prompt) -> str:
    """A stable content hash (hex, 64): equal for a string and the lone user message it means."""
    canonical = json.dumps(as_dicts(prompt), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# Without a chat template a lone user message reads as before conversations existed (its text and
# a blank line); anything longer is laid out with role labels and ends on the assistant's label.
FALLBACK_LABELS: dict[Role, str] = {"system": "System", "user": "User", "assistant": "Assistant"}


def fallback_layout(prompt: Prompt) -> str:
    """The documented layout for a tokenizer without a chat template (docs/generation.md)."""
    if is_single_turn(prompt):
        return f"{last_user_turn(prompt)}\n\n"
    assert not isinstance(prompt, str)
    turns = "".join(f"{FALLBACK_LABELS[m.role]}: {m.content}\n\n" for m in prompt)
    return f"{turns}{FALLBACK_LABELS['assistant']}: "


# --- records that hold a prompt and, for a conversation, its messages -------------------------------------


def fill_prompt(data: Any) -> Any:
    """A `model_validator(mode="before")` body: a record given ``messages`` but no ``prompt`` gets
    the last message's content as its prompt (checked afterwards by `check_messages`)."""
    if isinstance(data, dict) and "prompt" not in data and isinstance(data.get("messages"), list):
        last = data["messages"][-1] if data["messages"] else None
        if isinstance(last, dict) and isinstance(last.get("content"), str):
            return {**data, "prompt": last["content"]}
    return data


def check_messages(messages: Sequence[Any] | None, prompt: str) -> None:
    """Raise ValueError (pydantic's way) unless ``messages`` is None or a conversation whose last
    user turn is ``prompt``."""
    if messages is None:
        return
    try:
        checked = conversation(list(messages), where="messages")
    except TetherInputError as exc:
        raise ValueError(str(exc)) from None
    if last_user_turn(checked) != prompt:
        raise ValueError("prompt must be the last user turn of messages (or be left out)")
