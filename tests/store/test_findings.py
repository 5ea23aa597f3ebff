"""Red-team findings round trips, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tether.errors import TetherInputError
from tether.store import NewPrompt, add_prompts, ensure_project, list_prompts, open_store
from tether.store.engine import Store
from tether.store.findings import (
    NewFinding,
    add_findings,
    finding_hash,
    finding_id,
    list_findings,
    mark_routed,
    set_finding_status,
)
from tether.store.raters import add_rater
from tether.store.tasks import NewTask, add_responses, add_tasks

H = "a" * 64


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.close()


def project(store: Store) -> int:
    with store.session() as s:
        return ensure_project(s, name="p").id


def finding(n: int, gap: float | None, source: str = "search") -> NewFinding:
    return NewFinding(
        source=source, prompt=f"p{n}", response=f"r{n}", dimension="helpful", gap=gap, rm_score=1.5
    )


def test_findings_are_idempotent_on_their_content(store: Store) -> None:
    pid = project(store)
    with store.session() as s:
        first = add_findings(s, project_id=pid, findings=[finding(1, 0.5), finding(2, None)], spec_hash=H)
    with store.session() as s:
        # same content, other fields: still the same finding, unchanged
        again = add_findings(
            s,
            project_id=pid,
            findings=[finding(3, 0.1), NewFinding("web", "p1", "r1", note="x")],
            spec_hash=H,
        )
        stored = {f.id: f for f in list_findings(s, project_id=pid)}
    assert again[1] == first[0] and again[0] not in first and len(stored) == 3
    one = stored[first[0]]
    assert one.source == "search" and one.note == "" and one.gap == 0.5 and one.status == "open"
    assert one.content_hash == finding_hash("p1", "r1") and one.created_at.tzinfo is not None
    # the separator keeps ("ab", "c") and ("a", "bc") apart
    assert finding_hash("ab", "c") != finding_hash("a", "bc")


def test_list_orders_by_gap_with_missing_gaps_last_and_filters(store: Store) -> None:
    pid = project(store)
    with store.session() as s:
        ids = add_findings(
            s,
            project_id=pid,
            findings=[
                finding(1, None),
                finding(2, 0.2),
                finding(3, 0.9),
                finding(4, None, "web"),
                finding(5, -1),
            ],
            spec_hash=H,
        )
        order = [f.id for f in list_findings(s, project_id=pid)]
        web = [f.id for f in list_findings(s, project_id=pid, source="web")]
        top = [f.id for f in list_findings(s, project_id=pid, limit=2)]
    # NULL gaps last; among them the newest (highest id, same timestamp) first
    assert order == [ids[2], ids[1], ids[4], ids[3], ids[0]]
    assert web == [ids[3]] and top == [ids[2], ids[1]]


def comparison_tasks(store: Store, pid: int, n: int) -> list[int]:
    with store.session() as s:
        add_prompts(
            s, project_id=pid, prompts=[NewPrompt("k", "a prompt", "helpful", "routine")], spec_hash=H
        )
        prompt_id = list_prompts(s, project_id=pid)[0].id
        ra, rb = add_responses(
            s, project_id=pid, items=[(prompt_id, "a", "x"), (prompt_id, "b", "y")], spec_hash=H
        )
        tasks = [NewTask(prompt_id=prompt_id, response_a_id=ra, response_b_id=rb)] * n
        return add_tasks(s, project_id=pid, batch_id=None, tasks=tasks, spec_hash=H)


def test_routing_and_dismissal_change_status(store: Store) -> None:
    pid = project(store)
    t1, t2 = comparison_tasks(store, pid, 2)
    with store.session() as s:
        a, b, c = add_findings(
            s, project_id=pid, findings=[finding(1, 1), finding(2, 2), finding(3, 3)], spec_hash=H
        )
    with store.session() as s:
        mark_routed(s, finding_ids=[a, b], task_ids=[t1, t2])
        dismissed = set_finding_status(s, finding_id=c, status="dismissed")
    with store.session() as s:
        routed = list_findings(s, project_id=pid, status="routed")
        still_open = list_findings(s, project_id=pid, status="open")
    assert [(f.id, f.task_id) for f in routed] == [(b, t2), (a, t1)]
    assert dismissed.status == "dismissed" and still_open == []
    with pytest.raises(TetherInputError, match="one task per finding"), store.session() as s:
        mark_routed(s, finding_ids=[a, b], task_ids=[t1])
    with pytest.raises(TetherInputError, match="unknown finding ids: 99"), store.session() as s:
        mark_routed(s, finding_ids=[99], task_ids=[t1])
    with pytest.raises(TetherInputError, match="'closed' is not one of"), store.session() as s:
        set_finding_status(s, finding_id=a, status="closed")


def test_bad_findings_write_nothing_and_red_teamers_see_their_own(store: Store) -> None:
    pid = project(store)
    with store.session() as s:
        ann = add_rater(s, project_id=pid, name="ann", kind="human", spec_hash=H).id
        bob = add_rater(s, project_id=pid, name="bob", kind="human", spec_hash=H).id
    with pytest.raises(TetherInputError, match=r"findings\[1\]: prompt and response"), store.session() as s:
        add_findings(s, project_id=pid, findings=[finding(1, 0), NewFinding("web", "p", " ")], spec_hash=H)
    with pytest.raises(TetherInputError, match=r"findings\[0\].source: 'mail'"), store.session() as s:
        add_findings(s, project_id=pid, findings=[NewFinding("mail", "p", "r")], spec_hash=H)
    with store.session() as s:
        assert list_findings(s, project_id=pid) == []
        add_findings(
            s,
            project_id=pid,
            findings=[NewFinding("web", "p", "r", submitted_by=ann, note="<b>flattery</b>")],
            spec_hash=H,
        )
        mine = list_findings(s, project_id=pid, submitted_by=ann)
        assert list_findings(s, project_id=pid, submitted_by=bob) == []
        found = finding_id(s, project_id=pid, prompt="p", response="r")
        assert finding_id(s, project_id=pid, prompt="p", response="other") is None
    assert [(f.id, f.note, f.submitted_by, f.dimension) for f in mine] == [
        (found, "<b>flattery</b>", ann, None)
    ]
