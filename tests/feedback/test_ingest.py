"""`tether feedback ingest FILE`: good lines kept once, bad lines rejected with their line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli.main import app
from tether.errors import TetherInputError
from tether.feedback.ingest import FlaggedItem, check_item, ingest_file, parse_lines
from tether.project import Project
from tether.store.feedback import list_feedback

from .conftest import stream, with_policy, write_jsonl

GOOD = {
    "idempotency_key": "k1",
    "prompt": "what is 2 plus 2 ?",
    "response": "the answer is 5 .",
    "model_version": "rl-7",
    "reason": "accuracy: wrong sum",
}


def line(**changes: object) -> str:
    item = {**GOOD, **changes}
    return json.dumps({k: v for k, v in item.items() if v is not None})


MIXED = "\n".join(
    [
        line(idempotency_key="a"),
        '{"prompt": "unterminated',
        line(idempotency_key="b", prompt=None),
        line(idempotency_key="c", response=42),
        "",
        line(idempotency_key="d", prompt="   "),
        line(idempotency_key=None),
        "[1, 2]",
        line(idempotency_key="e", respnse="typo"),
        line(idempotency_key="f", prompt="bad \u0000 byte"),
        line(idempotency_key="g", user_metadata={"locale": "de"}),
    ]
)


def test_malformed_lines_are_rejected_with_line_numbers_and_the_good_ones_kept(
    project: Project, tmp_path: Path
) -> None:
    path = tmp_path / "flagged.jsonl"
    path.write_text(MIXED + "\n", encoding="utf-8")
    report = ingest_file(project, path)
    assert (report.lines, report.stored, report.duplicates) == (10, 2, 0)
    reasons = {r.line: r.reason for r in report.rejected}
    assert sorted(reasons) == [2, 3, 4, 6, 7, 8, 9, 10]
    assert reasons[2].startswith("not valid JSON")
    assert reasons[3] == "prompt: Field required"
    assert reasons[4] == "response: Input should be a valid string"
    assert reasons[6] == "prompt: must not be blank"
    assert reasons[7] == "idempotency_key: required"
    assert reasons[8] == "item: expected a JSON object, got list"
    assert reasons[9] == "respnse: unknown field"
    assert "NUL" in reasons[10]
    with project.store.session() as session:
        stored = list_feedback(session, project_id=project.project_id)
    assert [s.idempotency_key for s in stored] == ["a", "g"]
    assert stored[1].user_meta is None  # dropped: the spec does not allow storing user metadata


def test_reingesting_the_same_file_stores_nothing_new(project: Project, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "flagged.jsonl", stream(200))
    first = ingest_file(project, path)
    again = ingest_file(project, path)
    assert (first.stored, first.duplicates, first.rejected) == (200, 0, [])
    assert (again.stored, again.duplicates, again.rejected) == (0, 200, [])
    with project.store.session() as session:
        stored = list_feedback(session, project_id=project.project_id)
    assert len(stored) == 200
    assert stored[0].prompt_meta is not None and stored[0].prompt_meta["truth"]  # sandbox truth kept


def test_a_key_reused_for_other_content_is_rejected_and_the_first_kept(
    sqlite_project: Project, tmp_path: Path
) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text(line(idempotency_key="x") + "\n" + line(idempotency_key="x", response="other") + "\n")
    report = ingest_file(sqlite_project, path)
    assert report.stored == 1
    assert [(r.line, r.reason) for r in report.rejected] == [
        (2, "idempotency_key 'x' is already stored with other content")
    ]


def test_user_metadata_is_kept_only_when_the_spec_allows_it(sqlite_project: Project, tmp_path: Path) -> None:
    allowed = with_policy(sqlite_project, "feedback", store_user_metadata=True)
    path = tmp_path / "f.jsonl"
    path.write_text(line(user_metadata={"locale": "de"}) + "\n", encoding="utf-8")
    ingest_file(allowed, path)
    with allowed.store.session() as session:
        assert list_feedback(session, project_id=allowed.project_id)[0].user_meta == {"locale": "de"}


def test_unreadable_files_are_input_errors(sqlite_project: Project, tmp_path: Path) -> None:
    with pytest.raises(TetherInputError, match="no such file"):
        ingest_file(sqlite_project, tmp_path / "missing.jsonl")
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TetherInputError, match="not UTF-8"):
        ingest_file(sqlite_project, binary)


def test_the_header_key_fills_a_missing_body_key_and_must_agree_with_it() -> None:
    body = {k: v for k, v in GOOD.items() if k != "idempotency_key"}
    item = check_item(body, key="from-header")
    assert isinstance(item, FlaggedItem) and item.idempotency_key == "from-header"
    clash = check_item(GOOD, key="other", where="item")
    assert isinstance(clash, list) and clash[0].field == "item.idempotency_key"
    too_long = check_item(body, key="k" * 201)
    assert isinstance(too_long, list) and too_long[0].field == "idempotency_key"


def test_blank_lines_are_skipped_not_counted() -> None:
    good, bad = parse_lines("\n\n" + line() + "\n   \n")
    assert [n for n, _ in good] == [3] and bad == []


def test_cli_reports_rejects_and_exits_2_after_keeping_the_good_lines(
    sqlite_project: Project, tmp_path: Path
) -> None:
    path = tmp_path / "flagged.jsonl"
    path.write_text(MIXED + "\n", encoding="utf-8")
    runner = CliRunner()
    args = ["feedback", "ingest", str(path), "--project", str(sqlite_project.root)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "stored 2" in result.output and "line 3: prompt: Field required" in result.output
    again = runner.invoke(app, [*args, "--json"])
    data = json.loads(again.stdout[: again.stdout.rindex("}") + 1])
    assert (data["stored"], data["duplicates"], len(data["rejected"])) == (0, 2, 8)
