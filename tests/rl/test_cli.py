"""`tether rl run` and `tether rl runs` through the real CLI: exit codes 0, 2 and 3 and their messages."""

from __future__ import annotations

import shutil

from typer.testing import CliRunner

from tests.rl.test_loop_support import (  # noqa: F401
    latest_id,
    register,
    single_thread,
    tighten_budget,
    tiny_project,
    tiny_template,
)
from tether.cli.main import app
from tether.project import Project
from tether.store import list_runs

runner = CliRunner()
TINY = ["--batch-size", "4", "--samples-per-prompt", "2", "--max-new-tokens", "12", "--ppo-epochs", "1"]
TINY += ["--minibatches", "2", "--lr", "1e-3", "--save-every", "0"]


def rl(project: Project, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["rl", *args, "--project", str(project.root)])
    return result.exit_code, result.output


def test_run_then_resume_then_list(tiny_project: Project) -> None:  # noqa: F811
    code, out = rl(tiny_project, "run", "--steps", "2", *TINY, "--save-every", "1")
    assert code == 0, out
    assert "completed after 2 steps" in out and "rl_checkpoint-" in out
    checkpoint = latest_id(tiny_project, "rl_checkpoint")
    code, out = rl(tiny_project, "run", "--from", checkpoint, "--steps", "3")
    assert code == 0, out
    assert "completed after 3 steps" in out
    code, out = rl(tiny_project, "runs")
    assert code == 0 and out.count("completed") == 2, out


def test_an_ungated_reward_model_exits_3_unless_forced(tiny_project: Project) -> None:  # noqa: F811
    source = tiny_project.root / ".tether" / "models" / "rm-tiny"
    copy = tiny_project.root / "rm-copy"
    shutil.copytree(source, copy)
    (copy / "extra.txt").write_text("a different checkpoint", encoding="utf-8")
    rm_id = register(tiny_project, "reward_model", copy)
    code, out = rl(tiny_project, "run", "--steps", "1", *TINY, "--reward-model", rm_id)
    assert code == 3, out
    assert f"reward model {rm_id} has not passed its gate" in out and "--force" in out
    code, out = rl(tiny_project, "run", "--steps", "1", *TINY, "--reward-model", rm_id, "--force")
    assert code == 0, out
    assert "did NOT pass its gate" in out and "override is recorded" in out
    with tiny_project.store.session() as session:
        runs = list_runs(session, project_id=tiny_project.project_id)
    assert [r.gate_overridden for r in runs] == [True]  # the refused attempt never opened a run


def test_kl_budget_stop_exits_3_after_saving(tiny_project: Project) -> None:  # noqa: F811
    project = tighten_budget(tiny_project, 0.001)
    code, out = rl(project, "run", "--steps", "5", *TINY)
    assert code == 3, out
    assert "stopped" in out and "KL budget" in out and "checkpoint saved: rl_checkpoint-" in out


def test_bad_input_exits_2_with_a_clear_message(tiny_project: Project) -> None:  # noqa: F811
    code, out = rl(tiny_project, "run", "--from", "no-such-checkpoint")
    assert code == 2 and "neither an rl_checkpoint artifact id nor a checkpoint directory" in out, out
    not_a_checkpoint = tiny_project.root / "empty"
    not_a_checkpoint.mkdir()
    code, out = rl(tiny_project, "run", "--from", str(not_a_checkpoint))
    assert code == 2 and "not an RL checkpoint" in out, out
    pickled = tiny_project.root / "rm-pickled"
    pickled.mkdir()
    (pickled / "pytorch_model.bin").write_bytes(b"not safe")
    code, out = rl(tiny_project, "run", "--steps", "1", "--reward-model", str(pickled))
    assert code == 2 and "no .safetensors weights (found pytorch_model.bin)" in out, out
    code, out = rl(tiny_project, "run", "--algo", "rloo", "--samples-per-prompt", "1")
    assert code == 2 and "rloo needs samples_per_prompt >= 2" in out, out
    code, out = rl(tiny_project, "run", "--algo", "trpo")
    assert code == 2 and "algo must be one of ppo, rloo" in out, out
    code, out = rl(tiny_project, "run", "--steps", "1", *TINY, "--log-to", "nope")
    assert code == 2 and "unknown tracker" in out, out
    with tiny_project.store.session() as session:
        assert list_runs(session, project_id=tiny_project.project_id) == []  # refused before any run opened


def test_seed_per_prompt_is_recorded_with_the_run(tiny_project: Project) -> None:  # noqa: F811
    from tether.artifacts import RL_CHECKPOINT_KIND, resolve
    from tether.rl.checkpoint import load_checkpoint

    code, out = rl(tiny_project, "run", "--steps", "1", *TINY, "--algo", "rloo", "--seed-per-prompt")
    assert code == 0, out
    assert "rl: prompts per step" not in out  # the split is printed on more than one process only
    checkpoint = resolve(tiny_project, kind=RL_CHECKPOINT_KIND, explicit=None).path
    assert load_checkpoint(checkpoint).meta["config"]["seed_per_prompt"] is True


def test_log_to_tensorboard_logs_every_step_through_accelerate(tiny_project: Project) -> None:  # noqa: F811
    import json

    import pytest

    pytest.importorskip("tensorboard", reason="the tensorboard package is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    code, out = rl(tiny_project, "run", "--steps", "2", *TINY, "--log-to", "tensorboard")
    assert code == 0, out
    with tiny_project.store.session() as session:
        run_id = list_runs(session, project_id=tiny_project.project_id)[-1].id
    run_dir = tiny_project.state_dir / "rl" / run_id
    events = EventAccumulator(str(run_dir / "trackers" / run_id))
    events.Reload()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = events.Scalars("objective/kl")
    assert [e.step for e in logged] == [r["step"] for r in rows] and len(rows) == 2
    # TensorBoard keeps float32: equal to the JSON row's float64 within float32 rounding.
    assert [e.value for e in logged] == pytest.approx(
        [r["objective/kl"] for r in rows], rel=2**-23, abs=1e-30
    )
