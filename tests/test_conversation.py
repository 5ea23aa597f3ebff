"""Conversations (`tether.conversation`): the rules a prompt obeys, and what each helper returns."""

from __future__ import annotations

import pytest

from tether.conversation import (
    Message,
    conversation,
    essential,
    fallback_layout,
    from_stored,
    is_single_turn,
    last_user_turn,
    prompt_key,
    stored_messages,
    with_system,
)
from tether.errors import TetherInputError

THREE_TURNS = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "What is 2+2?"},
]


def test_a_string_is_one_user_message_and_keeps_its_meaning() -> None:
    assert conversation("What is 2+2?") == (Message("user", "What is 2+2?"),)
    assert is_single_turn("x") and is_single_turn(conversation("x"))
    assert last_user_turn("What is 2+2?") == "What is 2+2?"
    assert stored_messages("x") is None and stored_messages(conversation("x")) is None
    # The content hash of a string equals that of the lone user message it means.
    assert prompt_key("x") == prompt_key(conversation([{"role": "user", "content": "x"}]))


def test_a_conversation_is_checked_and_read() -> None:
    conv = conversation(THREE_TURNS)
    assert [m.role for m in conv] == ["system", "user", "assistant", "user"]
    assert last_user_turn(conv) == "What is 2+2?" and not is_single_turn(conv)
    assert stored_messages(conv) == THREE_TURNS
    assert from_stored("What is 2+2?", THREE_TURNS) == conv and from_stored("q", None) == "q"
    assert essential(conv) == (Message("system", "Be brief."), Message("user", "What is 2+2?"))
    assert essential(conv[1:]) == (Message("user", "What is 2+2?"),)
    assert prompt_key(conv) != prompt_key(conv[1:])


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ([], "at least one user message"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "last message"),
        (
            [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
            "prompt[1].role: expected 'assistant'",
        ),
        ([{"role": "user", "content": "a"}, {"role": "system", "content": "s"}], "prompt[1].role"),
        ([{"role": "robot", "content": "a"}], "prompt[0].role: 'robot'"),
        ([{"role": "user", "content": "  "}], "prompt[0].content: the user message is blank"),
        ([{"role": "user", "content": 3}], "prompt[0].content: expected a string"),
        (["hello"], "prompt[0]: a message is an object"),
    ],
)
def test_a_bad_conversation_names_the_message_and_the_problem(messages: list, problem: str) -> None:
    with pytest.raises(TetherInputError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        conversation(messages)


def test_the_project_system_prompt_applies_unless_the_conversation_has_its_own() -> None:
    assert with_system("q", "Be kind.") == (Message("system", "Be kind."), Message("user", "q"))
    own = conversation(THREE_TURNS)
    assert with_system(own, "Be kind.") == own
    assert with_system("q", None) == (Message("user", "q"),)


def test_the_fallback_layout_keeps_single_turns_and_labels_longer_conversations() -> None:
    assert fallback_layout("What is 2+2?") == "What is 2+2?\n\n"  # as before conversations
    assert fallback_layout(conversation(THREE_TURNS)) == (
        "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello!\n\nUser: What is 2+2?\n\nAssistant: "
    )


def test_anchors_and_eval_cases_take_messages_and_fill_in_their_prompt() -> None:
    from pydantic import ValidationError

    from tether.evals.suite import Case
    from tether.spec.anchors import Anchor

    base = {"id": "a1", "response_a": "x", "response_b": "y", "label": "A", "dimension": "safety"}
    anchor = Anchor.model_validate({**base, "messages": THREE_TURNS, "explanation": "x is right"})
    assert anchor.prompt == "What is 2+2?" and anchor.messages == THREE_TURNS
    # Without messages an anchor serializes exactly as before conversations (its key stays).
    plain = Anchor.model_validate({**base, "prompt": "q", "explanation": "e"})
    assert "messages" not in plain.model_dump_json(exclude_none=True)
    with pytest.raises(ValidationError, match="last user turn"):
        Anchor.model_validate({**base, "prompt": "other", "messages": THREE_TURNS, "explanation": "e"})
    case = Case.model_validate({"id": "c1", "messages": THREE_TURNS})
    assert case.prompt == "What is 2+2?" and case.conversation == conversation(THREE_TURNS)
    assert Case.model_validate({"id": "c2", "prompt": "q"}).conversation == "q"
    with pytest.raises(ValidationError, match="expected 'assistant'"):
        Case.model_validate({"id": "c3", "messages": [THREE_TURNS[1], THREE_TURNS[1]]})


def test_a_flagged_production_item_can_be_a_conversation() -> None:
    from tether.feedback.ingest import FlaggedItem, check_item, to_new_feedback
    from tether.spec.model import FeedbackPolicy

    data = {"messages": THREE_TURNS, "response": "5", "model_version": "v1", "reason": "accuracy: wrong"}
    item = check_item({**data, "idempotency_key": "k"})
    assert isinstance(item, FlaggedItem) and item.prompt == "What is 2+2?"
    stored = to_new_feedback(item, FeedbackPolicy())
    assert stored.messages == THREE_TURNS and stored.prompt == "What is 2+2?"
    single = check_item({**data, "messages": [THREE_TURNS[-1]], "idempotency_key": "k"})
    assert isinstance(single, FlaggedItem) and to_new_feedback(single, FeedbackPolicy()).messages is None
    bad = check_item({**data, "prompt": "other", "idempotency_key": "k"})
    assert isinstance(bad, list) and "last user turn" in str(bad[0])
