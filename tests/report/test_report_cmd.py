"""`tether report` through the real CLI against a real project."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tether.cli.main import app
from tether.scaffold import init_project

from .conftest import LoopProject

runner = CliRunner()


def test_report_writes_the_page_where_asked(loop_project: LoopProject, tmp_path: Path) -> None:
    out = tmp_path / "out" / "loop.html"
    result = runner.invoke(app, ["report", "--project", str(loop_project.project.root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote the report of 2 iterations to" in result.output
    assert out.name in result.output.replace("\n", "")
    assert 'id="iteration-2"' in out.read_text(encoding="utf-8")


def test_report_without_iterations_exits_2_and_says_what_to_run(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p", template="sandbox")
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "-p", str(project.root), "-o", str(out)])
    assert result.exit_code == 2
    assert "no loop iterations yet; run `tether loop` first" in result.output
    assert not out.exists()


def test_report_refuses_a_directory_as_output(loop_project: LoopProject, tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "-p", str(loop_project.project.root), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "is a directory" in result.output
