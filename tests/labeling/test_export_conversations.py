"""Conversations leave Tether intact: TRL's conversational preference format, written, loaded and read
back as pairs, and refused where a standard (plain string) format would flatten it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tether.conversation import conversation, with_system
from tether.errors import TetherInputError
from tether.labeling.export import PreferenceRow, aggregate
from tether.labeling.export_files import load_export, load_rows, write_export
from tether.reward.data import load_preference_data

from .test_export import task, vote

CONV = conversation(
    [
        {"role": "user", "content": "Plan a trip to Kyoto — 日本語 ok?"},
        {"role": "assistant", "content": "Sure. How many days?"},
        {"role": "user", "content": "Three days, <b>cheap</b>."},
    ]
)
SYSTEM = "You are a careful travel assistant."


@pytest.fixture
def rows() -> tuple[list[PreferenceRow], list[PreferenceRow]]:
    made, _ = aggregate([task(1, vote(7, "A", 3)), task(2, vote(8, "B", 2)), task(3, vote(9, "A", 1))])
    made = [replace(made[0], prompt=CONV), *made[1:]]  # one conversation among single turns
    return made[:2], made[2:]


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_conversational_export_is_trls_format_and_reads_back(tmp_path: Path, rows: tuple) -> None:
    import datasets

    train, test = rows
    out = tmp_path / "export"
    write_export(
        out, train, test, fmt="trl-conversational", manifest={"system_prompt": SYSTEM}, system=SYSTEM
    )
    first, second = _lines(out / "train.jsonl")
    assert first["prompt"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Plan a trip to Kyoto — 日本語 ok?"},
        {"role": "assistant", "content": "Sure. How many days?"},
        {"role": "user", "content": "Three days, <b>cheap</b>."},
    ]
    assert first["chosen"] == [{"role": "assistant", "content": train[0].chosen}]
    assert first["rejected"] == [{"role": "assistant", "content": train[0].rejected}]
    assert second["prompt"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": train[1].prompt},
    ]

    files = {name: str(out / f"{name}.jsonl") for name in ("train", "test")}
    by_datasets = datasets.load_dataset("json", data_files=files, cache_dir=str(tmp_path / "cache"))
    assert by_datasets["train"][0]["prompt"] == first["prompt"]
    assert load_export(out)["train"].to_list()[0]["prompt"] == first["prompt"]

    back = load_rows(out, "train")
    assert back[0].prompt == with_system(CONV, SYSTEM)
    assert (back[0].chosen, back[0].rejected) == (train[0].chosen, train[0].rejected)
    pairs = load_preference_data(out).train
    assert pairs[0].prompt == back[0].prompt and pairs[1].chosen == train[1].chosen


@pytest.mark.parametrize("fmt", ["jsonl", "hf"])
def test_a_standard_format_refuses_to_flatten_a_conversation(tmp_path: Path, rows: tuple, fmt: str) -> None:
    train, test = rows
    with pytest.raises(
        TetherInputError, match=r"1 exported prompts are conversations \(tasks 1\).*trl-conversational"
    ):
        write_export(tmp_path / "out", train, test, fmt=fmt, manifest={})  # type: ignore[arg-type]
    single = [replace(r, prompt="hello") for r in train]
    with pytest.raises(TetherInputError, match="system prompt"):
        write_export(tmp_path / "out", single, test, fmt=fmt, manifest={}, system=SYSTEM)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()  # nothing half-written
