"""Every command on an empty assistant project: exit 0, or exit 2 saying what is missing.

Missing input is never exit 3 (a failed gate or a critical alert) and never a traceback. The
commands are enumerated from the Typer app, so a new command is walked as soon as it is wired in;
each runs on a fresh copy of the same empty project with only its required parameters filled in.
"""

from __future__ import annotations

import inspect
import shutil
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.models import ArgumentInfo, OptionInfo
from typer.testing import CliRunner

from tests.tiny_llama import save_tiny_llama
from tether.cli.main import app
from tether.project import Project
from tether.scaffold import init_project
from tether.store.raters import RaterRecord, list_raters

runner = CliRunner()

SKIP = {
    "demo": "builds and runs the whole sandbox pipeline in its own directory (minutes), not this project",
    "sandbox build": "builds the sandbox world into the project (SFT of its tiny policy, minutes)",
    "label serve": "starts the rater web server and blocks until stopped",
    "label ai": "retries the unreachable judge endpoint with backoff (~15 s), then exits 1 naming it",
}
"""Commands the walk leaves out, and why."""
OUTPUT_NAMES = {"out", "report", "dir", "directory", "output"}
"""Path parameters that name something the command writes (a new path); other paths are inputs."""


def leaf_commands(
    group: typer.Typer, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, Callable[..., Any]]]:
    """(the command's words, its function) for every command, through the app's registered groups."""
    for info in group.registered_commands:
        assert info.callback is not None
        name = info.name or info.callback.__name__.replace("_", "-")
        yield " ".join((*prefix, name)), info.callback
    for sub in group.registered_groups:
        assert sub.typer_instance is not None and sub.name is not None
        yield from leaf_commands(sub.typer_instance, (*prefix, sub.name))  # reserved names yield nothing


COMMANDS = sorted(leaf_commands(app))


def placeholder(name: str, kind: Any, scratch: Path) -> str:
    """A minimal value of the parameter's type: 1, a new output path, an empty input file, a word."""
    if kind in (int, float):
        return "1"
    if name in OUTPUT_NAMES:
        return str(scratch / f"new-{name}")
    if kind is Path:
        empty = scratch / "empty.jsonl"
        empty.touch()
        return str(empty)
    if "endpoint" in name or "url" in name:
        return "http://127.0.0.1:9/v1"  # nothing listens there
    return "x"


def minimal_args(command: Callable[..., Any], scratch: Path) -> list[str]:
    """Values for the command's required parameters only (those without a default)."""
    hints = typing.get_type_hints(command, include_extras=True)
    args: list[str] = []
    for param in inspect.signature(command).parameters.values():
        if param.default is not inspect.Parameter.empty:
            continue
        hint = hints[param.name]
        kind, *extras = typing.get_args(hint) if typing.get_origin(hint) is typing.Annotated else (hint,)
        info = next((e for e in extras if isinstance(e, (ArgumentInfo, OptionInfo))), None)
        value = placeholder(param.name, kind, scratch)
        if isinstance(info, OptionInfo):
            decls = [d for d in (info.param_decls or ()) if d.startswith("--")]
            args += [decls[0] if decls else "--" + param.name.replace("_", "-"), value]
        else:
            args.append(value)
    return args


@pytest.fixture(scope="module")
def empty_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_project(tmp_path_factory.mktemp("empty") / "assistant", template="assistant").root


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_no_command_exits_3_or_prints_a_traceback(
    name: str,
    command: Callable[..., Any],
    empty_project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if name in SKIP:
        pytest.skip(SKIP[name])
    project = tmp_path / "project"
    shutil.copytree(empty_project, project)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.chdir(project)
    args = [*name.split(), *minimal_args(command, scratch)]
    result = runner.invoke(app, args)
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed, f"tether {' '.join(args)} raised {result.exception!r}\n{result.output}"
    assert "Traceback" not in result.output, result.output
    assert result.exit_code in (0, 2), f"tether {' '.join(args)} exited {result.exit_code}\n{result.output}"
    if result.exit_code == 2:
        assert "error:" in result.output or "Error" in result.output, result.output
        assert "No such option" not in result.output and "Missing" not in result.output, result.output


def test_loop_waits_for_raters_once_a_policy_is_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README's order on a project with people: register, import prompts, then `tether loop`
    # plans a batch and waits (exit 0) for raters rather than failing.
    project = init_project(tmp_path / "p", template="assistant", policy=save_tiny_llama(tmp_path / "llama"))
    prompts = tmp_path / "prompts.jsonl"
    lines = [
        f'{{"text": "Question {i} about {d} ({s})?", "dimension": "{d}", "stratum": "{s}"}}'
        for d in project.spec.dimension_ids
        for s in ("routine", "hard", "adversarial", "edge")
        for i in range(8)
    ]
    prompts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.chdir(project.root)
    assert runner.invoke(app, ["data", "import-prompts", str(prompts)]).exit_code == 0
    short_samples(project)
    loop = ["loop", "--pairs", "50"]
    result = runner.invoke(app, loop)
    assert result.exit_code == 0, result.output
    assert "waiting:" in result.output and "no raters yet" in result.output
    assert runner.invoke(app, ["raters", "add", "ana"]).exit_code == 0
    result = runner.invoke(app, loop)
    assert result.exit_code == 0 and "labeling slots are still open" in result.output, result.output
    assert [r.name for r in _raters(project)] == ["ana"]


def short_samples(project: Project) -> None:
    """Eight-token responses: the tiny random model would otherwise ramble to the spec's 256."""
    spec = yaml.safe_load(project.spec_path.read_text(encoding="utf-8"))
    spec["generation"] = {**(spec.get("generation") or {}), "max_new_tokens": 8}
    project.spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


def _raters(project: Project) -> list[RaterRecord]:
    with project.store.session() as session:
        return list_raters(session, project_id=project.project_id)
