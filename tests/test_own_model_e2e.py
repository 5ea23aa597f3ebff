"""A team's own Hugging Face model through the whole pipeline, with the real CLI, on an assistant project.

The model is a tiny random-init Llama with a byte-level BPE tokenizer and a ChatML template, built
offline (`tests.tiny_llama`), once with a pad token and once without (Llama 3 style). Every stage
is a `tether` command run through Typer's CliRunner; three raters calibrate and label through the
real HTTP API (`tests.api_raters`). Sizes are tiny so each variant takes about a minute on 2 cores.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.api_raters import label_all, token_from_output
from tests.tiny_llama import save_tiny_llama
from tether.cli.main import app
from tether.project import Project

runner = CliRunner()

DIMENSIONS = ("safety", "accuracy", "honesty", "helpfulness", "concision")
PER_STRATUM = {"routine": 16, "hard": 3, "adversarial": 3, "edge": 3}
"""Prompts per dimension and stratum: enough for `label plan --n 60` (9 routine and 3 hard tasks per
dimension, see `labeling/plan.py`), with room for identical pairs and for the loop's own batch."""
TOPICS = ("lists", "files", "trains", "bread", "loops", "tides", "maps", "bees")
N_TASKS = 60
RATERS = ("ana", "bob", "cy")
RL_SMALL = ("--steps", "2", "--batch-size", "2", "--max-new-tokens", "8", "--ppo-epochs", "1",
            "--minibatches", "1", "--save-every", "2", "--sample-every", "1")  # fmt: skip
EVAL_SMALL = ("--samples", "1", "--max-new-tokens", "8")


def invoke(*args: str) -> Result:
    """Run `tether ARGS` in-process; nothing may raise or print a traceback."""
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"tether {' '.join(args)} raised") from result.exception
    assert "Traceback" not in result.output, result.output
    return result


def tether(*args: str, codes: tuple[int, ...] = (0,)) -> str:
    """`invoke`, whose exit code must be one of `codes`; the output."""
    result = invoke(*args)
    assert result.exit_code in codes, f"tether {' '.join(args)} -> {result.exit_code}\n{result.output}"
    return result.output


def write_prompts(path: Path) -> Path:
    """Short prompts (the tiny model's context is 256 tokens) over every dimension and stratum."""
    lines = []
    for dim in DIMENSIONS:
        for stratum, count in PER_STRATUM.items():
            for i in range(count):
                text = f"[{dim}/{stratum}] Tell me about {TOPICS[i % len(TOPICS)]}, case {i}."
                lines.append(json.dumps({"text": text, "dimension": dim, "stratum": stratum}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(params=[True, False], ids=["pad-token", "no-pad-token"])
def llama(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama", pad=request.param)


def set_up_project(tmp_path: Path, llama: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """init with --policy, register again (idempotent), import prompts, plan a batch."""
    root = tmp_path / "my-assistant"
    out = tether("init", str(root), "--template", "assistant", "--policy", str(llama))
    assert "SFT policy: policy-" in out, out
    with (root / "spec.yaml").open("a", encoding="utf-8") as spec:  # the loop samples by the spec alone
        spec.write("\ngeneration:\n  max_new_tokens: 12\n")
    monkeypatch.chdir(root)
    out = tether("policy", "register", str(llama), "--name", "tiny-llama")
    assert "already registered: policy" in out, out
    assert "(default)" in tether("policy", "list")
    tether("spec", "check")
    tether("data", "import-prompts", str(write_prompts(tmp_path / "prompts.jsonl")))
    out = tether("label", "plan", "--n", str(N_TASKS), "--max-new-tokens", "12")
    assert f"{N_TASKS} tasks" in out and "using policy policy-" in out, out
    return Project.open(root)


def label_through_the_api(project: Project) -> None:
    """Three raters added with the CLI, calibrated and labeling every task through /api/v1."""
    tokens = {name: token_from_output(tether("raters", "add", name)) for name in RATERS}
    done = label_all(project, tokens)
    calibration = project.spec.labeling.calibration_size
    assert all(counts["calibration"] == calibration for counts in done.values()), done
    assert sum(counts["task"] for counts in done.values()) >= N_TASKS, done
    status = tether("raters", "status")
    assert all(re.search(rf"{name}\s+│\s+human\s+│\s+active", status) for name in RATERS), status


def reward_model() -> None:
    """Export, train without --base (the registered policy), gate (a failure is fine on 60 pairs)."""
    out = tether("data", "export", "--out", "data/v1")
    assert "export export-" in out, out
    out = tether(
        "rm", "train", "--data", "data/v1", "--epochs", "1", "--batch-size", "16", "--max-length", "256"
    )
    assert "using policy policy-" in out and "reward model reward_model-" in out, out
    gate = invoke("rm", "eval", "--gate", "--probe-limit", "20", "--batch-size", "16")
    assert gate.exit_code in (0, 3), gate.output  # 3: a failed gate, expected on 60 pairs
    if gate.exit_code == 3:  # then RL refuses the reward model unless forced
        assert "has not passed its gate" in tether("rl", "run", *RL_SMALL, codes=(3,))


def rl_runs() -> list[str]:
    """PPO, RLOO and RLOO with LoRA, a few steps each, forced past the gate; their checkpoint ids."""
    ids = []
    for extra in ((), ("--algo", "rloo"), ("--algo", "rloo", "--lora", "--lora-r", "4")):
        out = tether("rl", "run", "--force", *RL_SMALL, *extra)
        found = re.search(r"checkpoint (rl_checkpoint-[0-9a-f]+)", out)
        assert "completed after 2 steps" in out and found, out
        ids.append(found.group(1))
    return ids


def evals_loop_report(checkpoint: str) -> None:
    """SFT and latest-checkpoint evals, their comparison, a loop that waits, the report, the lineage."""
    assert "of policy-" in tether("eval", "run", "--checkpoint", "sft", *EVAL_SMALL)
    assert f"of {checkpoint}" in tether("eval", "run", *EVAL_SMALL)
    out = tether("eval", "compare", "--n-boot", "200", codes=(0, 3))
    assert f"{checkpoint} vs policy-" in out, out
    loop = ("loop", "--iterations", "1", "--pairs", "20", "--redteam-prompts", "0", "--rm-epochs", "1")
    out = tether(*loop, "--rl-steps", "2")
    assert "waiting:" in out and "label" in out, out
    out = tether("report", "--out", "report.html")
    page = Path("report.html").read_text(encoding="utf-8")
    assert "policy-" in page and "tiny-llama" in page, out
    lineage = tether("lineage", checkpoint)
    for node in (
        f"rl_checkpoint {checkpoint}",
        "policy policy-",
        "reward_model reward_model-",
        "export export-",
    ):
        assert node in lineage, lineage
    assert "role=sft" in lineage, lineage


@pytest.mark.slow
def test_own_llama_through_every_stage(tmp_path: Path, llama: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("TETHER_DB_URL", raising=False)
    project = set_up_project(tmp_path, llama, monkeypatch)
    label_through_the_api(project)
    reward_model()
    checkpoints = rl_runs()
    evals_loop_report(checkpoints[-1])
