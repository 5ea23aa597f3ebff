"""Export of judgments: majority aggregation, stratified held-out split, files on disk, TRL uptake."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tether.errors import TetherInputError
from tether.labeling.export import (
    AggregateStats,
    PreferenceRow,
    TaskVotes,
    Vote,
    aggregate,
    heldout_count,
    split_heldout,
)
from tether.labeling.export_files import load_export, write_export


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Nothing here may touch the network or the user's Hugging Face cache.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


def task(task_id: int, *votes: Vote, dimension: str = "helpful", stratum: str = "s1") -> TaskVotes:
    # The trailing newline matters for TRL, which glues prompt and completion with no separator.
    return TaskVotes(
        task_id=task_id,
        prompt=f"question {task_id} about cats ?\n",
        response_a=f"good answer {task_id}",
        response_b=f"bad answer {task_id}",
        dimension=dimension,
        stratum=stratum,
        origin="plan",
        votes=votes,
    )


def vote(rater_id: int, choice: Any, strength: int = 2) -> Vote:
    return Vote(rater_id=rater_id, rater_name=f"r{rater_id}", choice=choice, strength=strength)


# --- aggregate --------------------------------------------------------------------------------------------


def test_unanimous_vote_keeps_a_with_mean_margin_and_full_agreement() -> None:
    rows, _ = aggregate([task(1, vote(1, "A", 3), vote(2, "A", 3), vote(3, "A", 2))])
    row = rows[0]
    assert (row.chosen, row.rejected) == ("good answer 1", "bad answer 1")
    assert row.margin == pytest.approx((1 + 1 + 2 / 3) / 3)  # 8/9
    assert row.agreement == 1.0
    assert (row.n_votes, row.rater_ids, row.rater_names) == (3, (1, 2, 3), ("r1", "r2", "r3"))
    assert (row.task_id, row.dimension, row.stratum, row.origin, row.tie) == (
        1,
        "helpful",
        "s1",
        "plan",
        False,
    )


def test_two_to_one_margin_is_the_mean_of_the_two_winners_only() -> None:
    rows, _ = aggregate([task(1, vote(1, "A", 3), vote(2, "B", 3), vote(3, "A", 1))])
    assert rows[0].chosen == "good answer 1"
    assert rows[0].margin == pytest.approx((1.0 + 1 / 3) / 2)  # the B voter's strong vote does not count
    assert rows[0].agreement == pytest.approx(2 / 3)
    assert rows[0].rater_ids == (1, 2, 3)  # every voter, not just the majority


def test_b_winning_swaps_chosen_and_rejected() -> None:
    rows, _ = aggregate([task(1, vote(1, "B", 2), vote(2, "B", 1))])
    assert (rows[0].chosen, rows[0].rejected) == ("bad answer 1", "good answer 1")
    assert rows[0].margin == pytest.approx(0.5)  # (2/3 + 1/3) / 2


def test_tie_majority_is_dropped_by_default_and_kept_as_a_tie_row_on_request() -> None:
    tied = task(1, vote(1, "tie", 0), vote(2, "tie", 0), vote(3, "B", 3))  # a tie vote's strength is unused
    rows, stats = aggregate([tied])
    assert rows == []
    assert stats == AggregateStats(tasks=1, kept=0, dropped_ties=1)

    rows, stats = aggregate([tied], keep_ties=True)
    assert (rows[0].chosen, rows[0].rejected, rows[0].margin, rows[0].tie) == (
        "good answer 1",
        "bad answer 1",
        0.0,
        True,
    )
    assert rows[0].agreement == pytest.approx(2 / 3)
    assert stats == AggregateStats(tasks=1, kept=1, kept_ties=1)


@pytest.mark.parametrize(
    "votes",
    [
        (vote(1, "A"), vote(2, "B"), vote(3, "tie")),  # three-way split
        (vote(1, "A"), vote(2, "B"), vote(3, "A"), vote(4, "B")),  # 2-2
    ],
    ids=["three-way", "two-two"],
)
def test_no_unique_plurality_is_dropped_unless_ties_are_kept(votes: tuple[Vote, ...]) -> None:
    rows, stats = aggregate([task(1, *votes)])
    assert rows == []
    assert stats == AggregateStats(tasks=1, dropped_no_majority=1)
    rows, _ = aggregate([task(1, *votes)], keep_ties=True)
    assert rows[0].tie and rows[0].margin == 0.0
    assert rows[0].agreement == pytest.approx(2 / len(votes) if len(votes) == 4 else 1 / 3)


def test_no_votes_is_dropped_even_when_ties_are_kept() -> None:
    for keep_ties in (False, True):
        rows, stats = aggregate([task(1)], keep_ties=keep_ties)
        assert rows == []
        assert stats == AggregateStats(tasks=1, dropped_no_votes=1)


def test_stats_count_every_outcome() -> None:
    tasks = [
        task(1, vote(1, "A", 1)),
        task(2, vote(1, "B", 1)),
        task(3, vote(1, "tie", 1)),
        task(4, vote(1, "A"), vote(2, "B")),
        task(5),
        task(6),
    ]
    rows, stats = aggregate(iter(tasks))  # any iterable, consumed once
    assert [row.task_id for row in rows] == [1, 2]
    assert stats == AggregateStats(
        tasks=6, kept=2, dropped_ties=1, dropped_no_majority=1, dropped_no_votes=2, kept_ties=0
    )


@pytest.mark.parametrize("bad", [vote(1, "A", 0), vote(1, "B", 4), vote(1, "C", 2)], ids=str)
def test_invalid_votes_are_refused_with_the_task_named(bad: Vote) -> None:
    with pytest.raises(TetherInputError, match="task 9"):
        aggregate([task(9, bad)])


# --- split_heldout ----------------------------------------------------------------------------------------


def rows_in_cells(cells: dict[tuple[str, str], int]) -> list[PreferenceRow]:
    """n A-wins rows per (dimension, stratum) cell, with distinct task ids."""
    tasks: list[TaskVotes] = []
    for (dimension, stratum), n in cells.items():
        for _ in range(n):
            tasks.append(task(len(tasks) + 1, vote(1, "A"), dimension=dimension, stratum=stratum))
    return aggregate(tasks)[0]


CELLS = {("helpful", "s1"): 10, ("helpful", "s2"): 3, ("harmless", "s1"): 1, ("harmless", "s2"): 5}


def test_split_is_stratified_by_dimension_and_stratum() -> None:
    train, test = split_heldout(rows_in_cells(CELLS), share=0.2, seed=0)
    per_cell: dict[tuple[str, str], int] = {cell: 0 for cell in CELLS}
    for row in test:
        per_cell[(row.dimension, row.stratum)] += 1
    # round(2.0)=2; round(0.6)=1; a lone row stays in train; round(1.0)=1
    assert per_cell == {
        ("helpful", "s1"): 2,
        ("helpful", "s2"): 1,
        ("harmless", "s1"): 0,
        ("harmless", "s2"): 1,
    }
    assert len(train) == 19 - 4


@pytest.mark.parametrize(
    ("n", "share", "expected"),
    [
        (10, 0.2, 2),
        (3, 0.2, 1),
        (2, 0.1, 1),
        (5, 0.5, 2),
        (7, 0.5, 4),
        (1, 0.6, 0),
        (2, 0.9, 1),
        (10, 0.0, 0),
    ],
)
def test_heldout_count_by_hand(n: int, share: float, expected: int) -> None:
    # (2, 0.1): round(0.2)=0, floored to 1; (5, 0.5): round(2.5)=2, halves to even; (2, 0.9): capped at n-1
    assert heldout_count(n, share) == expected


def test_split_is_disjoint_complete_and_keeps_input_order() -> None:
    rows = rows_in_cells(CELLS)
    train, test = split_heldout(rows, share=0.3, seed=4)
    train_ids, test_ids = [r.task_id for r in train], [r.task_id for r in test]
    assert not set(train_ids) & set(test_ids)
    assert sorted(train_ids + test_ids) == [r.task_id for r in rows]
    assert train_ids == sorted(train_ids) and test_ids == sorted(test_ids)


def test_split_is_deterministic_and_depends_on_the_seed_not_the_input_order() -> None:
    rows = rows_in_cells(CELLS)

    def test_ids(seed: int, rows: list[PreferenceRow] = rows) -> frozenset[int]:
        return frozenset(row.task_id for row in split_heldout(rows, share=0.2, seed=seed)[1])

    assert test_ids(0) == test_ids(0)
    assert test_ids(0, rows[::-1]) == test_ids(0)
    assert len({test_ids(seed) for seed in range(5)}) > 1


def test_split_does_not_depend_on_pythons_string_hash() -> None:
    code = (
        "from tests.labeling.test_export import rows_in_cells, CELLS\n"
        "from tether.labeling.export import split_heldout\n"
        "print(sorted(r.task_id for r in split_heldout(rows_in_cells(CELLS), share=0.2, seed=3)[1]))"
    )
    root = Path(__file__).resolve().parents[2]
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
            env={"PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(root / "src")},
        ).stdout
        for hash_seed in ("1", "2")
    }
    here = sorted(r.task_id for r in split_heldout(rows_in_cells(CELLS), share=0.2, seed=3)[1])
    assert outputs == {f"{here}\n"}


@pytest.mark.parametrize("share", [-0.1, 1.0, 1.5])
def test_split_refuses_a_share_outside_zero_to_one(share: float) -> None:
    with pytest.raises(TetherInputError, match="share"):
        split_heldout(rows_in_cells(CELLS), share=share)


def test_zero_share_keeps_everything_in_train() -> None:
    rows = rows_in_cells(CELLS)
    assert split_heldout(rows, share=0.0) == (rows, [])


# --- write_export / load_export ---------------------------------------------------------------------------


@pytest.fixture
def splits() -> tuple[list[PreferenceRow], list[PreferenceRow]]:
    rows, _ = aggregate(
        [
            task(1, vote(7, "A", 3), vote(8, "B", 1), vote(9, "A", 1)),
            task(2, vote(7, "B", 2), dimension="harmless"),
            task(3, vote(8, "A", 1)),
            task(4, vote(9, "tie", 0)),
        ],
        keep_ties=True,
    )
    return rows[:3], rows[3:]


def expected_record(row: PreferenceRow) -> dict[str, Any]:
    return {**vars(row), "rater_ids": list(row.rater_ids), "rater_names": list(row.rater_names)}


def leftovers(directory: Path) -> list[str]:
    """What the export left in its parent directory (the HF_HOME of the offline fixture aside)."""
    return sorted(p.name for p in directory.iterdir() if p.name != "hf-home")


def test_jsonl_export_loads_with_datasets_and_load_export(tmp_path: Path, splits: Any) -> None:
    import datasets

    train, test = splits
    out = tmp_path / "export"
    written = write_export(out, train, test, fmt="jsonl", manifest={"project": "demo"})
    assert written == [out / "manifest.json", out / "test.jsonl", out / "train.jsonl"]
    first = json.loads((out / "train.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first == expected_record(train[0])
    assert first["margin"] == pytest.approx(2 / 3) and first["rater_ids"] == [7, 8, 9]

    files = {name: str(out / f"{name}.jsonl") for name in ("train", "test")}
    by_datasets = datasets.load_dataset("json", data_files=files, cache_dir=str(tmp_path / "cache"))
    ours = load_export(out)
    for loaded in (by_datasets, ours):
        assert loaded["train"].to_list() == [expected_record(r) for r in train]
        assert loaded["test"].to_list() == [expected_record(r) for r in test]


def test_hf_export_loads_with_load_from_disk_and_load_export(tmp_path: Path, splits: Any) -> None:
    import datasets

    train, test = splits
    out = tmp_path / "export"
    write_export(out, train, test, fmt="hf", manifest={})
    for loaded in (datasets.load_from_disk(str(out)), load_export(out)):
        assert loaded["train"].to_list() == [expected_record(r) for r in train]
        assert loaded["test"][0]["tie"] is True
        assert loaded["train"].features["rater_ids"] == datasets.List(datasets.Value("int64"))


@pytest.mark.parametrize("fmt", ["jsonl", "hf"])
def test_an_empty_test_split_keeps_its_columns(tmp_path: Path, splits: Any, fmt: Any) -> None:
    write_export(tmp_path / "export", splits[0], [], fmt=fmt, manifest={})
    loaded = load_export(tmp_path / "export")
    assert loaded["test"].num_rows == 0
    assert loaded["test"].column_names == loaded["train"].column_names == list(vars(splits[0][0]))


def test_manifest_holds_the_callers_fields_and_counts(tmp_path: Path, splits: Any) -> None:
    train, test = splits
    write_export(tmp_path / "export", train, test, fmt="jsonl", manifest={"project": "demo", "seed": 0})
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["project"] == "demo" and manifest["seed"] == 0
    assert manifest["format"] == "jsonl"
    assert manifest["rows"] == {"train": 3, "test": 1}
    assert manifest["rows_by_dimension"] == {"train": {"harmless": 1, "helpful": 2}, "test": {"helpful": 1}}
    assert manifest["columns"][:3] == ["prompt", "chosen", "rejected"]


def test_reserved_manifest_keys_are_refused(tmp_path: Path, splits: Any) -> None:
    with pytest.raises(TetherInputError, match="reserved"):
        write_export(tmp_path / "export", *splits, fmt="jsonl", manifest={"rows": 1})
    assert not (tmp_path / "export").exists()


def test_an_existing_empty_directory_is_used(tmp_path: Path, splits: Any) -> None:
    (tmp_path / "export").mkdir()
    write_export(tmp_path / "export", *splits, fmt="jsonl", manifest={})
    assert load_export(tmp_path / "export")["train"].num_rows == 3


def test_a_non_empty_out_dir_is_refused_and_left_alone(tmp_path: Path, splits: Any) -> None:
    out = tmp_path / "export"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(TetherInputError, match="not empty"):
        write_export(out, *splits, fmt="hf", manifest={})
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert leftovers(tmp_path) == ["export"]


def test_a_failed_write_leaves_nothing_behind(
    tmp_path: Path, splits: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datasets

    def half_write(self: Any, path: str, **_: Any) -> None:
        (Path(path) / "train").mkdir()
        raise OSError("disk full")

    monkeypatch.setattr(datasets.DatasetDict, "save_to_disk", half_write)
    with pytest.raises(OSError, match="disk full"):
        write_export(tmp_path / "export", *splits, fmt="hf", manifest={})
    assert leftovers(tmp_path) == []


def test_load_export_explains_what_is_wrong(tmp_path: Path, splits: Any) -> None:
    with pytest.raises(TetherInputError, match="no export there"):
        load_export(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TetherInputError, match="empty"):
        load_export(tmp_path / "empty")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "data.csv").write_text("a,b\n", encoding="utf-8")
    with pytest.raises(TetherInputError, match="not a Tether export"):
        load_export(tmp_path / "other")

    out = tmp_path / "export"
    write_export(out, *splits, fmt="jsonl", manifest={})
    (out / "test.jsonl").unlink()
    with pytest.raises(TetherInputError, match=r"test\.jsonl: missing"):
        load_export(out)
    (out / "test.jsonl").write_text('{"prompt": "p"}\n', encoding="utf-8")
    with pytest.raises(TetherInputError, match=r"test\.jsonl:1: missing columns"):
        load_export(out)
    (out / "test.jsonl").write_text("\n{not json\n", encoding="utf-8")
    with pytest.raises(TetherInputError, match=r"test\.jsonl:2: not valid JSON"):
        load_export(out)


def test_write_export_refuses_an_unknown_format(tmp_path: Path, splits: Any) -> None:
    with pytest.raises(TetherInputError, match="csv"):
        write_export(tmp_path / "export", *splits, fmt="csv", manifest={})  # type: ignore[arg-type]


# --- TRL uptake -------------------------------------------------------------------------------------------


def tiny_tokenizer(texts: list[str]) -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.train_from_iterator(
        texts, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[EOS]"])
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]"
    )


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["jsonl", "hf"])
def test_trl_reward_trainer_trains_on_the_export_as_is(tmp_path: Path, fmt: Any) -> None:
    import datasets
    import torch
    import trl
    from transformers import GPT2Config, GPT2ForSequenceClassification

    tasks = [task(i, vote(1, "A", 3), vote(2, "B" if i % 3 else "A", 1)) for i in range(12)]
    tasks = [replace(t, dimension="harmless") if t.task_id % 2 else t for t in tasks]
    train, test = split_heldout(aggregate(tasks)[0], share=0.2)
    write_export(tmp_path / "export", train, test, fmt=fmt, manifest={})
    dataset = load_export(tmp_path / "export")
    # Vocabulary from the three texts apart, as a real tokenizer would not know glued words either.
    tokenizer = tiny_tokenizer([r[c] for r in dataset["train"] for c in ("prompt", "chosen", "rejected")])
    config = GPT2Config(
        n_layer=1,
        n_embd=32,
        n_head=2,
        n_positions=64,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config.num_labels = 1  # one scalar reward; not a GPT2Config parameter in transformers' type stubs
    torch.manual_seed(0)
    model = GPT2ForSequenceClassification(config)
    assert model.score.out_features == 1
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = trl.RewardConfig(
        output_dir=str(tmp_path / "rm"),
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-2,
        max_length=64,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = trl.RewardTrainer(
        model=model, args=args, train_dataset=dataset["train"], processing_class=tokenizer
    )
    # Guards the test itself: had prompt and completion fused into unknown words, both sides would match.
    prepared = trainer.train_dataset
    assert isinstance(prepared, datasets.Dataset)
    assert prepared.num_rows == len(train)
    assert all(c != r for c, r in zip(prepared["chosen_ids"], prepared["rejected_ids"], strict=True))
    trainer.train()
    changed = [name for name, p in model.named_parameters() if not torch.equal(before[name], p)]
    assert "score.weight" in changed and any(name.startswith("transformer.") for name in changed)
    # The margin column reaches the loss: step 1 is -log σ(r_c - r_r - margin) with r_c ≈ r_r at init.
    first_loss = trainer.state.log_history[0]["loss"]
    assert first_loss > 0.9  # ≈ -log σ(-2/3) = 1.08; without the margin it would be ≈ log 2 = 0.69
