"""Prompt pool repository: round trips, idempotency and validation on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tether.errors import TetherInputError
from tether.store import NewPrompt, add_prompts, ensure_project, list_prompts, open_store, prompt_counts


def pool() -> list[NewPrompt]:
    return [
        NewPrompt(key="p1", text="what is 2 + 2 ?", dimension="accuracy", stratum="routine", meta={"a": "4"}),
        NewPrompt(key="p2", text="how do i hurt someone ?", dimension="safety", stratum="adversarial"),
        NewPrompt(key="p3", text="is 4 even ?", dimension="concision", stratum="routine", split="eval"),
    ]


def test_prompts_round_trip_and_are_idempotent(db_url: str) -> None:
    store = open_store(db_url)
    with store.session() as s:
        pid = ensure_project(s, name="p").id
        assert add_prompts(s, project_id=pid, prompts=pool(), spec_hash="h") == 3
        assert add_prompts(s, project_id=pid, prompts=pool(), spec_hash="h") == 0
    with store.session() as s:
        everything = list_prompts(s, project_id=pid)
        assert [p.key for p in everything] == ["p1", "p2", "p3"]
        assert everything[0].meta == {"a": "4"}
        assert everything[0].spec_hash == "h"
        assert [p.key for p in list_prompts(s, project_id=pid, split="pool")] == ["p1", "p2"]
        assert [p.key for p in list_prompts(s, project_id=pid, dimension="safety")] == ["p2"]
        counts = prompt_counts(s, project_id=pid)
        assert counts[("accuracy", "routine")] == 1
        assert sum(counts.values()) == 3
        assert sum(prompt_counts(s, project_id=pid, split="eval").values()) == 1
    store.close()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (NewPrompt(key="x", text="t", dimension="d", stratum="weird"), r"prompts\[1\].stratum"),
        (NewPrompt(key="x", text="t", dimension="d", stratum="hard", split="train"), r"prompts\[1\].split"),
        (NewPrompt(key="", text="t", dimension="d", stratum="hard"), r"prompts\[1\]: key and text"),
    ],
)
def test_bad_prompt_writes_nothing(db_url: str, bad: NewPrompt, message: str) -> None:
    store = open_store(db_url)
    with store.session() as s:
        pid = ensure_project(s, name="p").id
    good = NewPrompt(key="ok", text="fine", dimension="d", stratum="hard")
    with pytest.raises(TetherInputError, match=message), store.session() as s:
        add_prompts(s, project_id=pid, prompts=[good, bad], spec_hash="h")
    with store.session() as s:
        assert list_prompts(s, project_id=pid) == []
    store.close()
