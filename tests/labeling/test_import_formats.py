"""The parsing layer of `tether data import-preferences`: HH-RLHF, TRL and UltraFeedback rows read from
JSONL, JSON, Parquet and saved datasets become checked pairs, or problems naming the row and field."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from datasets import Dataset, DatasetDict

from tether.conversation import Message
from tether.errors import TetherInputError
from tether.labeling.import_formats import (
    ParsedFile,
    RowProblem,
    detect_format,
    pair_key,
    parse_file,
    parse_rows,
    read_rows,
    synthetic_hh_rows,
)

UNICODE = "naïve — 日本語 🙂"


def user(text: str) -> Message:
    return Message("user", text)


def bot(text: str) -> Message:
    return Message("assistant", text)


def msg(role: str, content: Any) -> dict[str, Any]:
    return {"role": role, "content": content}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def hh(*turns: str) -> str:
    """An HH transcript from alternating human/assistant texts, laid out as the data set is."""
    labels = ("Human", "Assistant")
    return "".join(f"\n\n{labels[i % 2]}: {text}" for i, text in enumerate(turns))


def problems(parsed: ParsedFile) -> list[tuple[int, str]]:
    return [(p.row, p.field) for p in parsed.problems]


# --- HH-RLHF ----------------------------------------------------------------------------------------------


def test_hh_single_turn_row_from_jsonl(tmp_path: Path) -> None:
    row = {
        "chosen": "\n\nHuman: What is 2+2?\n\nAssistant: 4.",
        "rejected": "\n\nHuman: What is 2+2?\n\nAssistant: 5.",
    }
    parsed = parse_file(write_jsonl(tmp_path / "hh.jsonl", [row]))
    assert (parsed.format, parsed.rows, parsed.problems) == ("hh-rlhf", 1, [])
    (pair,) = parsed.pairs
    assert pair.row == 1
    assert pair.prompt == (user("What is 2+2?"),)
    assert (pair.chosen, pair.rejected, pair.margin, pair.tie) == ("4.", "5.", None, False)


def test_hh_three_turns_share_the_conversation_before_the_last_reply() -> None:
    history = ("Hi", "Hello! How can I help?", "I need a cake recipe", "Which kind?", "Chocolate")
    row = {"chosen": hh(*history, "Mix cocoa, flour and eggs."), "rejected": hh(*history, "No.")}
    (pair,) = parse_rows([row], "hh-rlhf").pairs
    assert pair.prompt == (
        user("Hi"),
        bot("Hello! How can I help?"),
        user("I need a cake recipe"),
        bot("Which kind?"),
        user("Chocolate"),
    )
    assert (pair.chosen, pair.rejected) == ("Mix cocoa, flour and eggs.", "No.")


def test_hh_bare_markers_inside_a_turn_stay_text_and_layout_whitespace_goes() -> None:
    # "Human:" and "Assistant:" without the blank line before them are part of the turn's text; the one
    # space after a marker and trailing whitespace are layout (a second leading space is kept).
    chosen = "\n\nHuman:  Quote:\nHuman: hi\nAssistant: yo \n\nAssistant:It said\nHuman: hi\n"
    rejected = "\n\nHuman:  Quote:\nHuman: hi\nAssistant: yo \n\nAssistant: Nothing.  "
    (pair,) = parse_rows([{"chosen": chosen, "rejected": rejected}], "hh-rlhf").pairs
    assert pair.prompt == (user(" Quote:\nHuman: hi\nAssistant: yo"),)
    assert (pair.chosen, pair.rejected) == ("It said\nHuman: hi", "Nothing.")


def test_hh_keeps_unicode_through_parquet(tmp_path: Path) -> None:
    path = tmp_path / "hh.parquet"
    Dataset.from_list([{"chosen": hh(UNICODE, f"{UNICODE}!"), "rejected": hh(UNICODE, "ok")}]).to_parquet(
        path
    )
    parsed = parse_file(path)
    assert parsed.format == "hh-rlhf"
    assert parsed.pairs[0].prompt == (user(UNICODE),)
    assert parsed.pairs[0].chosen == f"{UNICODE}!"


def test_hh_bad_rows_name_their_row_and_field(tmp_path: Path) -> None:
    good = {"chosen": hh("Q", "A"), "rejected": hh("Q", "B")}
    rows = [
        good,  # 1
        {"chosen": hh("Q", "A"), "rejected": "\n\nHuman: Q\n\nAssistant:"},  # 2: empty final reply
        {"chosen": hh("Q", "A", "", "x"), "rejected": hh("Q", "A", "", "y")},  # 3: empty earlier turn
        {"chosen": hh("Q", "A"), "rejected": hh("Other", "B")},  # 4: prefixes differ
        {"chosen": "preamble" + hh("Q", "A"), "rejected": hh("Q", "B")},  # 5: text before the first turn
        {"chosen": hh("Q", "A", "more"), "rejected": hh("Q", "B")},  # 6: ends with a human turn
        {"chosen": 7, "rejected": hh("Q", "B")},  # 7: wrong type
        {"chosen": hh("Q", "A"), "rejected": hh("Q", "A ")},  # 8: identical replies
        {"chosen": hh("Q", "A")},  # 9: rejected missing
        good,  # 10
    ]
    parsed = parse_file(write_jsonl(tmp_path / "bad.jsonl", rows))
    assert parsed.format == "hh-rlhf" and parsed.rows == 10
    assert [p.row for p in parsed.pairs] == [1, 10]
    assert problems(parsed) == [
        (2, "rejected"),
        (3, "chosen[2].content"),
        (4, "rejected"),
        (5, "chosen"),
        (6, "chosen"),
        (7, "chosen"),
        (8, "rejected"),
        (9, "rejected"),
    ]
    by_row = {p.row: p for p in parsed.problems}
    assert "blank" in by_row[2].message
    assert "do not share the conversation before their last assistant turn" in by_row[4].message
    assert "preamble" in by_row[5].message
    assert "assistant" in by_row[6].message
    assert "int" in by_row[7].message
    assert "identical" in by_row[8].message
    assert by_row[9].message == "missing"
    assert str(by_row[2]).startswith("row 2, field 'rejected': ")


# --- TRL --------------------------------------------------------------------------------------------------


def test_trl_standard_explicit_prompt_is_one_user_message_and_markers_stay_literal(tmp_path: Path) -> None:
    row = {"prompt": "Say \n\nHuman: hi", "chosen": "Hi\n\nAssistant: there", "rejected": UNICODE}
    parsed = parse_file(write_jsonl(tmp_path / "trl.jsonl", [row]))
    assert parsed.format == "trl"
    (pair,) = parsed.pairs
    assert pair.prompt == (user("Say \n\nHuman: hi"),)
    assert (pair.chosen, pair.rejected, pair.margin, pair.tie) == (
        "Hi\n\nAssistant: there",
        UNICODE,
        None,
        False,
    )


def test_trl_conversational_explicit_prompt_from_parquet(tmp_path: Path) -> None:
    row = {
        "prompt": [
            msg("system", "Be brief."),
            msg("user", "Hi"),
            msg("assistant", "Hello"),
            msg("user", "Bye?"),
        ],
        "chosen": [msg("assistant", "Bye!")],
        "rejected": [msg("assistant", "Hello again.")],
    }
    path = tmp_path / "trl.parquet"
    Dataset.from_list([row]).to_parquet(path)
    parsed = parse_file(path)
    assert parsed.format == "trl"
    (pair,) = parsed.pairs
    assert pair.prompt == (Message("system", "Be brief."), user("Hi"), bot("Hello"), user("Bye?"))
    assert (pair.chosen, pair.rejected) == ("Bye!", "Hello again.")


def test_trl_conversational_implicit_prompt_from_json_array(tmp_path: Path) -> None:
    shared = [msg("user", "Name a colour"), msg("assistant", "Blue"), msg("user", "Another")]
    rows = [{"chosen": [*shared, msg("assistant", "Red")], "rejected": [*shared, msg("assistant", "Blue")]}]
    path = tmp_path / "trl.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    parsed = parse_file(path)
    assert parsed.format == "trl"
    (pair,) = parsed.pairs
    assert pair.prompt == (user("Name a colour"), bot("Blue"), user("Another"))
    assert (pair.chosen, pair.rejected) == ("Red", "Blue")


def test_trl_string_rows_without_a_prompt_are_refused() -> None:
    parsed = parse_rows([{"chosen": "The answer is 4", "rejected": "The answer is 5"}], "trl")
    assert parsed.pairs == []
    assert problems(parsed) == [(1, "prompt")]
    assert "ambiguous" in parsed.problems[0].message


def test_trl_bad_rows_name_their_row_and_field() -> None:
    reply = [msg("assistant", "ok")]
    rows: list[dict[str, Any]] = [
        {"prompt": "Q", "chosen": "A", "rejected": "B"},  # 1: good
        {"prompt": "Q", "chosen": [msg("assistant", "A"), msg("assistant", "B")], "rejected": reply},  # 2
        {"prompt": "Q", "chosen": [msg("robot", "A")], "rejected": reply},  # 3: unknown role
        {"prompt": [msg("user", "a"), msg("user", "b")], "chosen": "A", "rejected": "B"},  # 4: no alternation
        {"prompt": [msg("user", 5)], "chosen": "A", "rejected": "B"},  # 5: non-string content
        {"prompt": 3, "chosen": "A", "rejected": "B"},  # 6: wrong type
        {
            "chosen": [msg("user", "Q"), msg("assistant", "A")],
            "rejected": [msg("user", "R"), msg("assistant", "B")],
        },
        {"chosen": [msg("user", "Q")], "rejected": [msg("user", "Q"), msg("assistant", "B")]},  # 8: no reply
        {"prompt": "Q", "chosen": "A", "rejected": "A"},  # 9: identical
        {"prompt": "Q", "chosen": " ", "rejected": "B"},  # 10: blank reply
        {"prompt": "", "chosen": "A", "rejected": "B"},  # 11: blank prompt
    ]
    parsed = parse_rows(rows, "trl")
    assert [p.row for p in parsed.pairs] == [1]
    assert problems(parsed) == [
        (2, "chosen"),
        (3, "chosen[0].role"),
        (4, "prompt[1].role"),
        (5, "prompt[0].content"),
        (6, "prompt"),
        (7, "rejected"),
        (8, "chosen"),
        (9, "rejected"),
        (10, "chosen"),
        (11, "prompt[0].content"),
    ]


# --- UltraFeedback ----------------------------------------------------------------------------------------


def uf(prompt: str, chosen: str, rejected: str, high: Any, low: Any, **extra: Any) -> dict[str, Any]:
    return {
        "prompt": prompt,
        "prompt_id": "abc",
        "chosen": [msg("user", prompt), msg("assistant", chosen)],
        "rejected": [msg("user", prompt), msg("assistant", rejected)],
        "messages": [msg("user", prompt), msg("assistant", chosen)],
        "score_chosen": high,
        "score_rejected": low,
        **extra,
    }


def test_ultrafeedback_margins_ties_and_order_from_a_saved_dataset(tmp_path: Path) -> None:
    rows = [
        uf("Why?\n\nHuman: because", "Since\n\nAssistant: so", "Dunno", 8.0, 5.5),
        uf(UNICODE, "Yes", "No", 7.0, 7.0),
        uf("Q", "A", "B", 3.0, 4.5),
    ]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "uf"))
    parsed = parse_file(tmp_path / "uf")
    assert (parsed.format, parsed.rows) == ("ultrafeedback", 3)
    first, tie = parsed.pairs
    assert first.prompt == (user("Why?\n\nHuman: because"),)
    assert (first.chosen, first.rejected, first.margin, first.tie) == (
        "Since\n\nAssistant: so",
        "Dunno",
        2.5,
        False,
    )
    assert (tie.row, tie.prompt, tie.margin, tie.tie) == (2, (user(UNICODE),), 0.0, True)
    assert problems(parsed) == [(3, "score_chosen")]
    assert "below" in parsed.problems[0].message


def test_ultrafeedback_prompt_from_the_lists_when_they_hold_more_than_the_prompt() -> None:
    longer = [msg("system", "Be kind."), msg("user", "Q")]
    row = uf("Q", "A", "B", 2, 1) | {
        "chosen": [*longer, msg("assistant", "A")],
        "rejected": [*longer, msg("assistant", "B")],
    }
    (pair,) = parse_rows([row], "ultrafeedback").pairs
    assert pair.prompt == (Message("system", "Be kind."), user("Q"))
    assert pair.margin == 1.0
    wrong = row | {"prompt": "Something else"}
    assert problems(parse_rows([wrong], "ultrafeedback")) == [(1, "prompt")]


def test_ultrafeedback_bad_scores_and_lists() -> None:
    rows = [
        uf("Q", "A", "B", None, 1.0),  # 1: missing
        uf("Q", "A", "B", 2.0, "high"),  # 2: not a number
        uf("Q", "A", "B", True, 1.0),  # 3: a bool is not a score
        uf("Q", "A", "B", float("nan"), 1.0),  # 4
        uf("Q", "A", "B", 2.0, 1.0) | {"chosen": "A"},  # 5: a string, not messages
        uf("Q", "A", "A", 2.0, 1.0),  # 6: identical
        uf("Q", "A", "B", 2, 1),  # 7: good (ints)
    ]
    parsed = parse_rows(rows, "ultrafeedback")
    assert problems(parsed) == [
        (1, "score_chosen"),
        (2, "score_rejected"),
        (3, "score_chosen"),
        (4, "score_chosen"),
        (5, "chosen"),
        (6, "rejected"),
    ]
    assert [(p.row, p.margin) for p in parsed.pairs] == [(7, 1.0)]


# --- detection, files, keys -------------------------------------------------------------------------------


def test_detect_format_for_each_format_and_a_clear_error_otherwise() -> None:
    uf_row = uf("Q", "A", "B", 2, 1)
    assert detect_format(list(uf_row), uf_row) == "ultrafeedback"
    assert (
        detect_format(["prompt", "chosen", "rejected"], {"prompt": "Q", "chosen": "A", "rejected": "B"})
        == "trl"
    )
    implicit = {"chosen": [msg("user", "Q")], "rejected": [msg("user", "Q")]}
    assert detect_format(["chosen", "rejected"], implicit) == "trl"
    assert (
        detect_format(["chosen", "rejected"], {"chosen": hh("Q", "A"), "rejected": hh("Q", "B")}) == "hh-rlhf"
    )
    with pytest.raises(TetherInputError) as caught:
        detect_format(["text", "label"], {"text": "x", "label": 1})
    for word in ("'text'", "'label'", "hh-rlhf", "trl", "ultrafeedback", "score_chosen"):
        assert word in str(caught.value)
    # Strings without the HH markers and no prompt: no format fits.
    with pytest.raises(TetherInputError):
        detect_format(["chosen", "rejected"], {"chosen": "A", "rejected": "B"})


def test_parse_file_names_the_file_for_unknown_columns_and_missing_ones(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "other.jsonl", [{"text": "x", "label": 1}])
    with pytest.raises(TetherInputError, match=r"other\.jsonl.*'text', 'label'"):
        parse_file(path)
    with pytest.raises(TetherInputError, match="no column 'score_chosen', 'score_rejected'"):
        parse_file(
            write_jsonl(tmp_path / "trl.jsonl", [{"prompt": "Q", "chosen": "A", "rejected": "B"}]),
            "ultrafeedback",
        )
    with pytest.raises(TetherInputError, match="unknown format 'csv'"):
        parse_file(path, "csv")


def test_a_dataset_dict_needs_exactly_one_split(tmp_path: Path) -> None:
    rows = [{"prompt": "Q", "chosen": "A", "rejected": "B"}]
    DatasetDict({"train": Dataset.from_list(rows), "test": Dataset.from_list(rows)}).save_to_disk(
        str(tmp_path / "two")
    )
    with pytest.raises(TetherInputError, match="splits train, test"):
        read_rows(tmp_path / "two")
    DatasetDict({"train": Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "one"))
    assert parse_file(tmp_path / "one").pairs[0].chosen == "A"


def test_unreadable_files_are_input_errors_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"chosen": "a", "rejected": "b"}\n{"chosen": "x", oops\n', encoding="utf-8")
    with pytest.raises(TetherInputError, match=r"broken\.jsonl.*line 2"):
        read_rows(bad)
    array = tmp_path / "broken.json"
    array.write_text('[\n{"chosen": "a"},\n{"chosen": }\n]', encoding="utf-8")
    with pytest.raises(TetherInputError, match=r"broken\.json.*line 3"):
        read_rows(array)
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(TetherInputError, match="empty"):
        read_rows(tmp_path / "empty.jsonl")
    (tmp_path / "data.csv").write_text("chosen,rejected\na,b\n", encoding="utf-8")
    with pytest.raises(TetherInputError, match=r"data\.csv.*\.jsonl, \.json, \.parquet"):
        read_rows(tmp_path / "data.csv")
    (tmp_path / "plain").mkdir()
    with pytest.raises(TetherInputError, match="save_to_disk"):
        read_rows(tmp_path / "plain")
    with pytest.raises(TetherInputError, match="no such file"):
        read_rows(tmp_path / "missing.jsonl")


def test_keys_are_stable_content_hashes_whichever_format_the_row_came_from(tmp_path: Path) -> None:
    rows = [
        {"chosen": hh("Q", "A"), "rejected": hh("Q", "B")},
        {"chosen": hh("Q", "A"), "rejected": hh("Q", "C")},
    ]
    path = write_jsonl(tmp_path / "hh.jsonl", rows)
    first, second = parse_file(path).pairs, parse_file(path).pairs
    assert [p.key for p in first] == [p.key for p in second]
    assert first[0].key != first[1].key
    canonical = '{"chosen":"A","prompt":[{"content":"Q","role":"user"}],"rejected":"B"}'
    assert first[0].key == hashlib.sha256(canonical.encode()).hexdigest()
    trl = parse_rows([{"prompt": "Q", "chosen": "A", "rejected": "B"}], "trl").pairs[0]
    assert trl.key == first[0].key == pair_key((user("Q"),), "A", "B")


def test_progress_hears_rows_read_and_parse_rows_detects_the_format() -> None:
    seen: list[int] = []
    rows = list(synthetic_hh_rows(2500, seed=3))
    parsed = parse_rows(rows, "auto", progress=seen.append)
    assert (parsed.format, parsed.rows, len(parsed.pairs), parsed.problems) == ("hh-rlhf", 2500, 2500, [])
    assert seen == [1000, 2000, 2500]


def test_synthetic_hh_rows_are_deterministic_and_valid() -> None:
    rows = list(synthetic_hh_rows(300, seed=7))
    assert rows == list(synthetic_hh_rows(300, seed=7))
    assert rows != list(synthetic_hh_rows(300, seed=8))
    parsed = parse_rows(rows, "hh-rlhf")
    assert parsed.problems == [] and len(parsed.pairs) == 300
    assert {len(p.prompt) for p in parsed.pairs} == {1, 3, 5}  # one to three human turns
    assert len({p.key for p in parsed.pairs}) == 300


def test_row_problem_reads_as_a_sentence() -> None:
    assert str(RowProblem(17, "chosen", "missing")) == "row 17, field 'chosen': missing"
