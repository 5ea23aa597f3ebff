"""The CLI against real project directories and a real SQLite store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli.main import UPCOMING, app
from tether.project import Project

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_version() -> None:
    code, out = run("--version")
    assert code == 0
    assert out.startswith("tether ")


@pytest.mark.parametrize("template", ["blank", "assistant"])
def test_init_creates_project_files_and_store(tmp_path: Path, template: str) -> None:
    target = tmp_path / "proj"
    code, out = run("init", str(target), "--template", template)
    assert code == 0, out
    for name in ("tether.toml", "spec.yaml", "anchors.jsonl", "suites/README.md", ".tether/tether.db"):
        assert (target / name).exists(), name
    project = Project.open(target)
    assert project.config.template == template
    assert project.project_id >= 1


def test_init_refuses_an_existing_project_and_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "proj"
    assert run("init", str(target))[0] == 0
    (target / "spec.yaml").write_text("# my edits\n" + (target / "spec.yaml").read_text(), encoding="utf-8")
    before = snapshot(target)
    code, out = run("init", str(target), "--template", "assistant")
    assert code == 2
    assert "already a Tether project" in out
    assert snapshot(target) == before


def test_init_refuses_to_overwrite_user_files(tmp_path: Path) -> None:
    target = tmp_path / "existing"
    target.mkdir()
    (target / "spec.yaml").write_text("mine", encoding="utf-8")
    code, out = run("init", str(target))
    assert code == 2
    assert "refusing to overwrite" in out
    assert sorted(p.name for p in target.iterdir()) == ["spec.yaml"]


def test_init_unknown_template_is_usage_error(tmp_path: Path) -> None:
    code, out = run("init", str(tmp_path / "x"), "--template", "nope")
    assert code == 2
    assert "unknown template" in out
    assert not (tmp_path / "x").exists()


def test_spec_check_on_project_and_explicit_path(tmp_path: Path) -> None:
    target = tmp_path / "proj"
    run("init", str(target), "--template", "assistant")
    code, out = run("spec", "check", "--project", str(target))
    assert code == 0, out
    assert "valid spec" in out
    code, out = run("spec", "check", str(target / "spec.yaml"))
    assert code == 0


def test_spec_check_bad_spec_exits_2_with_field_messages_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "spec.yaml"
    bad.write_text(
        "name: x\nversion: '1'\ndimensions:\n  - id: a\n    description: d\n"
        "    rubric: [{score: 0, description: z}]\ncolour: blue\n",
        encoding="utf-8",
    )
    code, out = run("spec", "check", str(bad))
    assert code == 2
    assert "dimensions[0].rubric: must have at least 2 levels" in out
    assert "colour: unknown key" in out
    assert "Traceback" not in out


def test_spec_check_missing_file_exits_2(tmp_path: Path) -> None:
    code, out = run("spec", "check", str(tmp_path / "none.yaml"))
    assert code == 2
    assert "spec file not found" in out


def test_spec_hash_matches_project(tmp_path: Path) -> None:
    target = tmp_path / "proj"
    run("init", str(target))
    code, out = run("spec", "hash", "--project", str(target))
    assert code == 0
    assert out.strip() == Project.open(target).spec_hash


def test_spec_history_lists_versions(tmp_path: Path) -> None:
    target = tmp_path / "proj"
    run("init", str(target))
    spec = target / "spec.yaml"
    spec.write_text(spec.read_text().replace('version: "0.1"', 'version: "0.2"'), encoding="utf-8")
    code, out = run("spec", "history", "--project", str(target))
    assert code == 0, out
    assert "0.1" in out
    assert "0.2" in out


def test_commands_outside_a_project_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = run("spec", "history")
    assert code == 2
    assert "no tether.toml found" in out


def test_unknown_command_and_bad_option_are_usage_errors() -> None:
    assert run("frobnicate")[0] == 2
    assert run("init")[0] == 2  # missing DIR


@pytest.mark.parametrize("name", sorted(UPCOMING))
def test_reserved_commands_are_listed(name: str) -> None:
    code, out = run("--help")
    assert code == 0
    assert name in out


def test_console_script_runs_as_a_subprocess(tmp_path: Path) -> None:
    tether = Path(sys.executable).parent / "tether"
    done = subprocess.run(
        [str(tether), "init", str(tmp_path / "p")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    again = subprocess.run(
        [str(tether), "init", str(tmp_path / "p")], capture_output=True, text=True, check=False
    )
    assert again.returncode == 2
    assert "already a Tether project" in again.stderr


def test_demo_refuses_to_replace_a_directory_that_is_not_a_demo(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work", encoding="utf-8")
    code, out = run("demo", "--dir", str(precious), "--fresh")
    assert code == 2
    assert "not an earlier sandbox demo" in out
    assert (precious / "thesis.tex").read_text(encoding="utf-8") == "years of work"


def test_demo_and_loop_refuse_a_bad_pool_file_before_building_anything(tmp_path: Path) -> None:
    code, out = run("demo", "--dir", str(tmp_path / "d"), "--pool", str(tmp_path / "missing.yaml"))
    assert code == 2 and "does not exist" in out and not (tmp_path / "d").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("raters:\n  - name: x\n    temperature: -1\n", encoding="utf-8")
    code, out = run("demo", "--dir", str(tmp_path / "d"), "--pool", str(bad))
    assert code == 2 and "Traceback" not in out and not (tmp_path / "d").exists()
    code, out = run("loop", "--pool", str(tmp_path / "missing.yaml"))
    assert code == 2 and "does not exist" in out
