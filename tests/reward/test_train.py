"""Reward-model training: loss math, packing, bucketing, sufficiency, and real tiny training runs.

The runs use a one-layer GPT-2 built from scratch and a synthetic export whose chosen side always
holds the word "good" and whose rejected side never does, so accuracy must climb well above 0.5.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.reward.synthetic import TINY, WORDS, save_tiny_policy, synthetic_rows, write_synthetic_export
from tether.errors import TetherInputError
from tether.hashing import content_sha256
from tether.hf import ScoredLayout, scored_text
from tether.labeling.export import PreferenceRow
from tether.labeling.export_files import ExportFormat, write_export
from tether.project import Project
from tether.reward.config import RewardTrainConfig, Schedule, lr_factor, schedule
from tether.reward.data import (
    EncodedPair,
    PairCollator,
    PreferencePair,
    bucketed_batches,
    encode_pairs,
    load_preference_data,
    padding_share,
    sufficiency_warnings,
)
from tether.reward.loss import bradley_terry_loss, pair_accuracy
from tether.reward.train import (
    META_FILE,
    METRICS_FILE,
    REWARD_MODEL_KIND,
    train_checkpoint,
    train_reward_model,
)
from tether.sandbox.policy import train_tokenizer
from tether.scaffold import init_project
from tether.store import register_artifact

FAST = RewardTrainConfig(epochs=2, batch_size=16, lr=3e-3)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    # Two threads on a busy 2-core box spin far slower than one; these models are tiny anyway.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- builders ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    project: Project
    policy: Path
    export: Path
    policy_id: str
    export_id: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """A sandbox project with a registered tiny policy and a registered synthetic export."""
    root = tmp_path_factory.mktemp("rm-train")
    project = init_project(root / "proj", template="sandbox")
    policy = save_tiny_policy(project.path("models", "tiny-sft"))
    export = write_synthetic_export(project.path("exports", "e1"), spec_hash=project.spec_hash)
    ids = []
    with project.store.session() as session:
        for kind, path in (("policy", policy), ("export", export)):
            record = register_artifact(
                session,
                project_id=project.project_id,
                kind=kind,
                path=project.relative(path),
                content_hash=kind,
                spec_hash=project.spec_hash,
            )
            ids.append(record.id)
    return World(project, policy, export, ids[0], ids[1])


# --- loss -------------------------------------------------------------------------------------------------


def test_bradley_terry_loss_matches_hand_computed_values() -> None:
    one, zero = torch.tensor([1.0]), torch.tensor([0.0])
    assert bradley_terry_loss(one, zero).item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    assert bradley_terry_loss(one, zero).item() == pytest.approx(0.3133, abs=1e-4)
    # margin 1 moves the pair to a zero gap: log 2
    assert bradley_terry_loss(one, zero, torch.tensor([1.0])).item() == pytest.approx(math.log(2), abs=1e-6)
    # centering: log 2 + 0.01 * (1 + 1)^2
    loss = bradley_terry_loss(one, one, center_coef=0.01)
    assert loss.item() == pytest.approx(math.log(2) + 0.04, abs=1e-6)
    # mean over pairs: gaps 2 and -2
    pair = bradley_terry_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 2.0]))
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(2))) / 2
    assert pair.item() == pytest.approx(expected, abs=1e-6)


def test_pair_accuracy_counts_ties_as_wrong() -> None:
    acc = pair_accuracy(torch.tensor([1.0, 0.5, 0.0, 2.0]), torch.tensor([0.0, 0.5, 1.0, 1.0]))
    assert acc.item() == pytest.approx(0.5)


def test_schedule_warms_up_then_decays_to_zero() -> None:
    plan = schedule(RewardTrainConfig(epochs=2, warmup_ratio=0.1), steps_per_epoch=50)
    assert plan == Schedule(steps_per_epoch=50, total_steps=100, warmup_steps=10)
    factors = [lr_factor(s, plan) for s in range(100)]
    assert factors[0] < factors[9] < factors[10] == 1.0
    assert all(a >= b for a, b in pairwise(factors[10:]))
    assert 0 < factors[-1] < 0.02


def test_config_checks_values_and_reads_old_and_new_checkpoints() -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        RewardTrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="lr must be positive"):
        RewardTrainConfig(lr=0)
    cfg = RewardTrainConfig.from_dict({"epochs": 3, "retired_key": 1})
    assert cfg.epochs == 3 and cfg.batch_size == RewardTrainConfig().batch_size


# --- data -------------------------------------------------------------------------------------------------


def test_collator_packs_chosen_then_rejected_into_one_right_padded_batch() -> None:
    pairs = [
        EncodedPair([5, 6, 7], [8, 9], 0.5),
        EncodedPair([1], [2, 3, 4, 5, 6], 1.0),
        EncodedPair([7, 7], [7], 0.0),
    ]
    batch = PairCollator(pad_id=0)(pairs)
    assert batch["input_ids"].shape == (6, 5)  # (2B, T) with T the longest sequence
    assert batch["input_ids"][0].tolist() == [5, 6, 7, 0, 0]  # chosen rows first
    assert batch["input_ids"][4].tolist() == [2, 3, 4, 5, 6]  # then rejected, same pair order
    assert batch["attention_mask"].sum(dim=1).tolist() == [3, 1, 2, 2, 5, 1]
    assert batch["margin"].tolist() == [0.5, 1.0, 0.0]


def test_encode_pairs_reads_through_scored_text_and_leaves_out_long_pairs(tmp_path: Path) -> None:
    tokenizer = train_tokenizer([*WORDS, "say now good"])
    short = PreferencePair("say w1 now", "good w2", "w3", "accuracy", 0.5)
    long = PreferencePair("say w1 now", " ".join(WORDS), "w3", "accuracy", 0.5)
    encoded, skipped = encode_pairs(ScoredLayout.for_tokenizer(tokenizer), [short, long], max_length=20)
    assert skipped == 1 and len(encoded) == 1
    expected = tokenizer(scored_text(tokenizer, short.prompt, short.chosen), add_special_tokens=False)
    assert encoded[0].chosen_ids == expected["input_ids"]
    assert encoded[0].chosen_ids[-1] == tokenizer.eos_token_id


def test_bucketing_covers_every_pair_once_and_cuts_padding() -> None:
    rng = random.Random(1)
    lengths = [rng.randint(5, 200) for _ in range(1000)]
    bucketed = bucketed_batches(lengths, batch_size=32, bucket_size=10, rng=random.Random(0))
    plain = bucketed_batches(lengths, batch_size=32, bucket_size=1, rng=random.Random(0))
    assert sorted(i for b in bucketed for i in b) == list(range(1000))
    assert all(len(b) == 32 for b in bucketed[:-1]) and len(bucketed[-1]) == 1000 % 32
    assert padding_share(bucketed, lengths) < 0.15 < 0.3 < padding_share(plain, lengths)
    again = bucketed_batches(lengths, batch_size=32, bucket_size=10, rng=random.Random(0))
    other = bucketed_batches(lengths, batch_size=32, bucket_size=10, rng=random.Random(1))
    assert again == bucketed != other


def test_load_preference_data_trains_ties_skips_held_out_ones_and_reads_both_formats(tmp_path: Path) -> None:
    rows = synthetic_rows(12)
    rows[0] = PreferenceRow(**{**vars(rows[0]), "tie": True, "margin": 0.0})
    rows[11] = PreferenceRow(**{**vars(rows[11]), "tie": True, "margin": 0.0})
    formats: tuple[ExportFormat, ...] = ("jsonl", "hf")
    for fmt in formats:
        write_export(tmp_path / fmt, rows[:10], rows[10:], fmt=fmt, manifest={"spec_hash": "abc"})
        data = load_preference_data(tmp_path / fmt)
        # The training tie trains (toward equal rewards); the held-out one has no right order.
        assert (len(data.train), len(data.test), data.ties_dropped) == (10, 1, 1)
        assert data.train[0].tie and not any(p.tie for p in data.train[1:])
        assert data.manifest["spec_hash"] == "abc"
        assert data.train[1] == PreferencePair(
            rows[1].prompt, rows[1].chosen, rows[1].rejected, rows[1].dimension, rows[1].margin
        )


def test_sufficiency_warnings_name_short_dimensions_and_counts(world: World) -> None:
    spec = world.project.spec
    rows = synthetic_rows(30, dimensions=("accuracy", "safety"))
    warnings = sufficiency_warnings(rows, spec)
    assert warnings[0] == "30 training pairs, fewer than the spec's reward_model.min_pairs = 5000"
    assert "min_pairs_per_dimension = 500" in warnings[1]
    assert "accuracy 15" in warnings[1] and "safety 15" in warnings[1] and "honesty 0" in warnings[1]
    plenty = synthetic_rows(5000, dimensions=tuple(spec.dimension_ids))
    assert sufficiency_warnings(plenty, spec) == []


# --- training runs ----------------------------------------------------------------------------------------


def test_training_learns_saves_and_registers_the_checkpoint(world: World, tmp_path: Path) -> None:
    steps: list[tuple[int, int]] = []
    warned: list[str] = []
    out = tmp_path / "rm"
    result = train_reward_model(
        world.project,
        FAST,
        data=world.export,
        base=world.policy,
        out=out,
        on_warning=warned.append,
        on_step=lambda step, total, row: steps.append((step, total)),
    )
    assert result.metrics["train/accuracy"] > 0.9 and result.metrics["test/accuracy"] > 0.9
    assert result.pairs == 200 and result.steps == 2 * math.ceil(200 / 16) == len(steps)
    assert steps[-1] == (result.steps - 1, result.steps)
    assert any("min_pairs" in w for w in warned)  # 200 pairs are too few for the sandbox spec
    # parameters changed: compare the backbone with the base policy's
    before, after = load_file(world.policy / "model.safetensors"), load_file(out / "model.safetensors")
    key = "transformer.h.0.attn.c_attn.weight"
    assert not torch.equal(before[key], after[key])
    assert after["score.weight"].shape == (1, TINY.n_embd)
    meta = json.loads((out / META_FILE).read_text())
    assert meta["spec_hash"] == world.project.spec_hash
    assert meta["export"]["content_sha256"] == content_sha256(world.export)
    assert meta["export"]["artifact_id"] == world.export_id and meta["base"]["artifact_id"] == world.policy_id
    assert meta["config"] == FAST.as_dict() and meta["pairs"]["train"] == 200
    rows = [json.loads(line) for line in (out / METRICS_FILE).read_text().splitlines()]
    assert len(rows) == result.steps and rows[0]["train/accuracy"] < rows[-1]["train/accuracy"]
    assert result.artifact is not None and result.artifact.kind == REWARD_MODEL_KIND
    assert set(result.artifact.parents) == {world.export_id, world.policy_id}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_training_is_deterministic_on_cpu(world: World, tmp_path: Path) -> None:
    cfg = RewardTrainConfig(epochs=1, batch_size=16, lr=3e-3, seed=7)
    data = load_preference_data(world.export)
    for name in ("a", "b"):
        train_checkpoint(cfg, data, base=world.policy, out=tmp_path / name)
    first, second = ((tmp_path / n / METRICS_FILE).read_text() for n in ("a", "b"))
    assert first == second
    assert torch.equal(
        load_file(tmp_path / "a" / "model.safetensors")["score.weight"],
        load_file(tmp_path / "b" / "model.safetensors")["score.weight"],
    )


def test_shared_prefix_batching_takes_the_step_the_plain_batch_takes(world: World, tmp_path: Path) -> None:
    data = load_preference_data(world.export)
    # bucket_size 1: the same pairs in each batch whichever length the sampler sorts by.
    runs, rows = {}, {}
    for shared in (True, False):
        cfg = RewardTrainConfig(epochs=1, batch_size=16, lr=3e-3, bucket_size=1, shared_prefix=shared)
        out = tmp_path / f"shared-{shared}"
        runs[shared] = train_checkpoint(cfg, data, base=world.policy, out=out)
        rows[shared] = [json.loads(line) for line in (out / METRICS_FILE).read_text().splitlines()]
    on, off = runs[True], runs[False]
    assert "common prefix read once" in on.batching and "within" in on.batching
    assert off.batching == "pairs batched as two full sequences (shared_prefix is off)"
    assert json.loads((tmp_path / "shared-True" / META_FILE).read_text())["batching"] == on.batching
    # Step 0 starts from the same weights: its figures differ by float32 rounding alone (a sum over 16
    # pairs in another order, ~1e-7 relative); the tolerance is 100 times that.
    first_on, first_off = rows[True][0], rows[False][0]
    for key in ("train/loss", "train/reward_gap", "train/reward_mean", "train/grad_norm"):
        assert first_on[key] == pytest.approx(first_off[key], rel=1e-5, abs=1e-6), key


def test_training_logs_every_step_to_tensorboard_through_accelerate(world: World, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard package is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = RewardTrainConfig(epochs=1, batch_size=32, lr=3e-3)
    out = tmp_path / "rm"
    result = train_checkpoint(
        cfg, load_preference_data(world.export), base=world.policy, out=out, trackers=["tensorboard"]
    )
    events = EventAccumulator(str(out / "trackers" / "rm"))
    events.Reload()
    rows = [json.loads(line) for line in (out / METRICS_FILE).read_text().splitlines()]
    logged = events.Scalars("train/loss")
    assert [e.step for e in logged] == [r["step"] for r in rows] == list(range(result.steps))
    # TensorBoard stores float32: equal to the float64 row within float32's rounding.
    assert [e.value for e in logged] == pytest.approx([r["train/loss"] for r in rows], rel=2**-23)
    assert "train/grad_norm" in events.Tags()["scalars"] and "epoch" not in events.Tags()["scalars"]


def test_an_unknown_or_missing_tracker_is_refused_before_any_work(world: World, tmp_path: Path) -> None:
    data = load_preference_data(world.export)
    with pytest.raises(TetherInputError, match=r"unknown tracker.*choose from .*tensorboard.*trackio"):
        train_checkpoint(FAST, data, base=world.policy, out=tmp_path / "a", trackers=["tensorbored"])
    with pytest.raises(TetherInputError, match="not installed here; `pip install aim`"):
        train_checkpoint(FAST, data, base=world.policy, out=tmp_path / "b", trackers=["aim"])
    assert not list(tmp_path.iterdir())


def test_lora_trains_adapters_and_head_and_saves_a_plain_merged_model(world: World, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    cfg = RewardTrainConfig(epochs=2, batch_size=16, lr=1e-2, lora=True, lora_r=4, lora_alpha=8)
    result = train_checkpoint(cfg, load_preference_data(world.export), base=world.policy, out=tmp_path / "rm")
    before, after = (
        load_file(world.policy / "model.safetensors"),
        load_file(tmp_path / "rm" / "model.safetensors"),
    )
    assert not any("lora" in key for key in after)  # merged: loaders need no peft
    assert not torch.equal(
        before["transformer.h.0.attn.c_attn.weight"], after["transformer.h.0.attn.c_attn.weight"]
    )
    assert torch.equal(before["transformer.h.0.mlp.c_fc.weight"], after["transformer.h.0.mlp.c_fc.weight"])
    assert result.metrics["train/accuracy"] > 0.7
    assert "common prefix read once" in result.batching  # through peft's wrapper of the head
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm", use_safetensors=True)
    assert model.config.num_labels == 1 and model.config.pad_token_id is not None


def test_spec_mismatch_warns_or_refuses_under_strict(world: World, tmp_path: Path) -> None:
    other = write_synthetic_export(tmp_path / "old-export", spec_hash="0" * 64, n=48)
    with pytest.raises(TetherInputError, match=r"exported under spec 000000000000.*--strict"):
        train_reward_model(
            world.project, FAST, data=other, base=world.policy, out=tmp_path / "x", strict=True
        )
    assert not (tmp_path / "x").exists()
    warned: list[str] = []
    cfg = RewardTrainConfig(epochs=1, batch_size=16)
    train_reward_model(
        world.project, cfg, data=other, base=world.policy, out=tmp_path / "y", on_warning=warned.append
    )
    assert any("exported under spec 000000000000" in w for w in warned)
    assert (tmp_path / "y" / "model.safetensors").is_file()


def test_a_failed_run_leaves_nothing_behind(world: World, tmp_path: Path) -> None:
    def boom(step: int, total: int, row: dict[str, float]) -> None:
        if step == 2:
            raise RuntimeError("interrupted")

    data = load_preference_data(world.export)
    with pytest.raises(RuntimeError, match="interrupted"):
        train_checkpoint(FAST, data, base=world.policy, out=tmp_path / "rm", on_step=boom)
    assert list(tmp_path.iterdir()) == []


# --- CLI --------------------------------------------------------------------------------------------------


def run_cli(project: Project, *args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from tether.cli.main import app

    result = CliRunner().invoke(app, ["rm", "train", *args, "--project", str(project.root)])
    return result.exit_code, result.output


def test_cli_trains_on_the_latest_export_from_the_policy(world: World) -> None:
    code, out = run_cli(world.project, "--epochs", "1", "--batch-size", "32", "--lr", "3e-3")
    assert code == 0, out
    assert f"using export {world.export_id}" in out and f"using policy {world.policy_id}" in out
    assert "warning:" in out and "min_pairs" in out
    assert "reward model reward_model-" in out and "held-out accuracy" in out
    assert "common prefix read once" in out
    saved = out.split("saved to ")[1].split()[0]
    assert Path(saved).parent == world.project.state_dir / "models"
    assert (Path(saved) / "model.safetensors").is_file()


def test_cli_bad_inputs_exit_2_naming_the_problem(world: World, tmp_path: Path) -> None:
    project = world.project
    code, out = run_cli(project, "--data", str(tmp_path / "missing"))
    assert code == 2 and "missing" in out and "neither an artifact id nor an existing path" in out
    empty = tmp_path / "empty-export"
    write_export(empty, [], synthetic_rows(3), fmt="jsonl", manifest={"spec_hash": project.spec_hash})
    code, out = run_cli(project, "--data", str(empty))
    assert code == 2 and "empty-export" in out and "no training pairs" in out
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "pytorch_model.bin").write_bytes(b"\0")
    code, out = run_cli(project, "--base", str(pickled))
    assert code == 2 and "pickled" in out and "no .safetensors" in out and "pytorch_model.bin" in out
    old = write_synthetic_export(tmp_path / "old", spec_hash="f" * 64, n=24)
    code, out = run_cli(project, "--data", str(old), "--strict")
    assert code == 2 and "manifest.json" in out and "--strict" in out
    code, out = run_cli(project, "--batch-size", "0")
    assert code == 2 and "batch_size must be at least 1" in out
    used = tmp_path / "used"
    used.mkdir()
    (used / "file").write_text("x")
    code, out = run_cli(project, "--out", str(used))
    assert code == 2 and "not an empty directory" in out
