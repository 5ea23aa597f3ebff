"""`python -m tether` and `python -m tether.cli.main`: the `tether` command line with its exit codes,
and what ranks other than 0 print under a launcher.

A real training run through `-m tether`, under accelerate's launcher, is in
tests/reward/test_distributed_rm.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli import common
from tether.errors import TetherInputError

FORMS = {
    "python -m tether": [sys.executable, "-m", "tether"],
    "python -m tether.cli.main": [sys.executable, "-m", "tether.cli.main"],
    "tether": [str(Path(sys.executable).parent / "tether")],
}


def tether(
    form: str, *args: str, rank: int | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "RANK"}
    if rank is not None:
        env["RANK"] = str(rank)
    return subprocess.run(
        [*FORMS[form], *args], capture_output=True, text=True, check=False, env=env, cwd=cwd, timeout=300
    )


@pytest.mark.parametrize("form", FORMS)
def test_every_form_exits_2_on_a_bad_argument(form: str) -> None:
    done = tether(form, "--no-such-option")
    assert done.returncode == 2
    assert "No such option" in done.stderr


@pytest.mark.parametrize("form", ["python -m tether", "python -m tether.cli.main"])
def test_the_module_forms_run_commands(form: str, tmp_path: Path) -> None:
    done = tether(form, "init", str(tmp_path / "p"), "--template", "sandbox")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "p" / "tether.toml").is_file()
    # The silent exit 0 that issue 15 found: a missing export must be an input error.
    missing = tether(form, "rm", "train", "--data", "nonexistent", cwd=tmp_path / "p")
    assert missing.returncode == 2
    assert "nonexistent" in missing.stderr


def test_a_rank_other_than_0_prints_nothing() -> None:
    assert tether("python -m tether", "--version").stdout.startswith("tether ")
    quiet = tether("python -m tether", "--version", rank=1)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    usage = tether("python -m tether", "--no-such-option", rank=1)
    assert (usage.returncode, usage.stdout, usage.stderr) == (2, "", "")  # rank 0 shows it


def test_a_tether_error_on_another_rank_prints_prefixed_after_the_grace_period(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    waited: list[float] = []
    monkeypatch.setattr(common.time, "sleep", waited.append)
    common.report_error(TetherInputError("--batch-size 9 does not divide"), rank=1)
    assert waited == [common.RANK_ERROR_GRACE_S]
    assert capsys.readouterr().err.strip() == "[rank 1] error: --batch-size 9 does not divide"
    common.report_error(TetherInputError("on rank 0"), rank=0)
    assert capsys.readouterr().err.strip() == "error: on rank 0" and len(waited) == 1


def test_usage_errors_are_left_to_rank_0(monkeypatch: pytest.MonkeyPatch) -> None:
    from tether.cli.main import app

    monkeypatch.setattr(common, "RANK", 1)
    result = CliRunner().invoke(app, ["rm", "train", "--no-such-option"])
    assert result.exit_code == 2 and "No such option" not in result.output
    monkeypatch.setattr(common, "RANK", 0)
    result = CliRunner().invoke(app, ["rm", "train", "--no-such-option"])
    assert result.exit_code == 2 and "No such option" in result.output
