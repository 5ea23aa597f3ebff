"""Feedback items and API keys on a real database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tether.errors import TetherInputError
from tether.store import Store, ensure_project, open_store
from tether.store.api_keys import create_api_key, list_api_keys, revoke_api_key, verify_api_key
from tether.store.feedback import (
    NewFeedback,
    add_feedback,
    feedback_counts,
    list_feedback,
    recent_prompts,
    set_feedback_status,
    stored_by_key,
)


@pytest.fixture
def store(db_url: str) -> Iterator[tuple[Store, int]]:
    opened = open_store(db_url)
    with opened.session() as session:
        project_id = ensure_project(session, name="p").id
    yield opened, project_id
    opened.close()


def item(key: str, prompt: str = "what is 2 plus 2 ?", **extra: object) -> NewFeedback:
    return NewFeedback(
        idempotency_key=key,
        prompt=prompt,
        response="the answer is 5 .",
        model_version="v1",
        reason="accuracy: wrong sum",
        **extra,  # type: ignore[arg-type]
    )


def test_each_key_is_stored_once_and_retries_say_duplicate(store: tuple[Store, int]) -> None:
    db, pid = store
    with db.session() as s:
        first = add_feedback(s, project_id=pid, items=[item("a"), item("b"), item("a")], spec_hash="h")
    assert [o.outcome for o in first] == ["stored", "stored", "duplicate"]
    assert first[0].id == first[2].id
    with db.session() as s:
        again = add_feedback(
            s, project_id=pid, items=[item("b"), item("c"), item("a", prompt="other")], spec_hash="h"
        )
    assert [o.outcome for o in again] == ["duplicate", "stored", "conflict"]
    assert again[0].id == first[1].id
    with db.session() as s:
        stored = list_feedback(s, project_id=pid)
        assert [r.idempotency_key for r in stored] == ["a", "b", "c"]
        assert stored_by_key(s, project_id=pid, keys=["a"])["a"].prompt == "what is 2 plus 2 ?"
        assert feedback_counts(s, project_id=pid) == {
            "new": 3,
            "skipped": 0,
            "review": 0,
            "ok": 0,
            "routed": 0,
        }


def test_user_and_prompt_meta_come_back_apart(store: tuple[Store, int]) -> None:
    db, pid = store
    with db.session() as s:
        add_feedback(
            s,
            project_id=pid,
            items=[item("m", user_meta={"locale": "de"}, prompt_meta={"id": "x"}), item("n")],
            spec_hash="h",
        )
    with db.session() as s:
        found = stored_by_key(s, project_id=pid, keys=["m", "n"])
    assert (found["m"].user_meta, found["m"].prompt_meta) == ({"locale": "de"}, {"id": "x"})
    assert (found["n"].user_meta, found["n"].prompt_meta) == (None, None)


def test_large_batches_cross_the_insert_chunks(store: tuple[Store, int]) -> None:
    db, pid = store
    items = [item(f"k{i}", prompt=f"prompt {i}") for i in range(1203)]
    with db.session() as s:
        assert {o.outcome for o in add_feedback(s, project_id=pid, items=items, spec_hash="h")} == {"stored"}
    with db.session() as s:
        assert {o.outcome for o in add_feedback(s, project_id=pid, items=items, spec_hash="h")} == {
            "duplicate"
        }
        assert len(list_feedback(s, project_id=pid)) == 1203
        assert recent_prompts(s, project_id=pid, limit=2) == ["prompt 1202", "prompt 1201"]


def test_concurrent_senders_of_one_key_store_one_row(store: tuple[Store, int]) -> None:
    db, pid = store

    def send(_: int) -> list[str]:
        with db.session() as s:
            return [o.outcome for o in add_feedback(s, project_id=pid, items=[item("race")], spec_hash="h")]

    with ThreadPoolExecutor(4) as pool:
        outcomes = [o for result in pool.map(send, range(8)) for o in result]
    assert sorted(outcomes) == ["duplicate"] * 7 + ["stored"]
    with db.session() as s:
        assert len(list_feedback(s, project_id=pid)) == 1


def test_status_moves_only_from_the_named_status(store: tuple[Store, int]) -> None:
    db, pid = store
    with db.session() as s:
        ids = [o.id for o in add_feedback(s, project_id=pid, items=[item("a"), item("b")], spec_hash="h")]
        assert set_feedback_status(s, item_ids=ids[:1], status="skipped", only_from="new") == 1
        assert set_feedback_status(s, item_ids=ids, status="skipped", only_from="new") == 1
        assert set_feedback_status(s, item_ids=ids, status="skipped", only_from="new") == 0
        with pytest.raises(TetherInputError, match="not one of"):
            set_feedback_status(s, item_ids=ids, status="lost")
        assert [r.status for r in list_feedback(s, project_id=pid, status="skipped")] == ["skipped"] * 2


def test_empty_prompt_or_long_key_is_refused_before_writing(store: tuple[Store, int]) -> None:
    db, pid = store
    with pytest.raises(TetherInputError, match=r"feedback\[1\]"), db.session() as s:
        add_feedback(s, project_id=pid, items=[item("ok"), item("x", prompt=" ")], spec_hash="h")
    with pytest.raises(TetherInputError, match="1-200"), db.session() as s:
        add_feedback(s, project_id=pid, items=[item("k" * 201)], spec_hash="h")
    with db.session() as s:
        assert list_feedback(s, project_id=pid) == []


def test_api_keys_are_hashed_scoped_and_revocable(store: tuple[Store, int]) -> None:
    db, pid = store
    with db.session() as s:
        record, key = create_api_key(s, project_id=pid, name="prod")
        other_pid = ensure_project(s, name="other").id
    assert key.startswith("tfk_") and len(key) > 40
    assert record.key_hash != key and key not in repr(record)
    with db.session() as s:
        assert verify_api_key(s, project_id=pid, key=key, scope="feedback") is not None
        assert verify_api_key(s, project_id=other_pid, key=key, scope="feedback") is None
        assert verify_api_key(s, project_id=pid, key=key + "x", scope="feedback") is None
        assert verify_api_key(s, project_id=pid, key="", scope="feedback") is None
        with pytest.raises(TetherInputError, match="live API key named 'prod'"):
            create_api_key(s, project_id=pid, name="prod")
        with pytest.raises(TetherInputError, match="scope"):
            create_api_key(s, project_id=pid, name="x", scope="admin")
    with db.session() as s:
        assert revoke_api_key(s, project_id=pid, name="prod").revoked
        assert verify_api_key(s, project_id=pid, key=key, scope="feedback") is None
        with pytest.raises(TetherInputError, match="no live API key"):
            revoke_api_key(s, project_id=pid, name="prod")
        _, second = create_api_key(s, project_id=pid, name="prod")
    with db.session() as s:
        assert [(k.name, k.revoked) for k in list_api_keys(s, project_id=pid)] == [
            ("prod", True),
            ("prod", False),
        ]
        assert verify_api_key(s, project_id=pid, key=second, scope="feedback") is not None
