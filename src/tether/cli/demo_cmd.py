"""`tether demo`: the whole pipeline on the sandbox world, from an empty directory."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.rule import Rule

from tether.cli import sandbox_cmd
from tether.cli.common import console
from tether.errors import TetherInputError
from tether.project import CONFIG_FILE, STATE_DIR, read_config
from tether.scaffold import init_project
from tether.spec import short_hash


def _clear_previous_demo(directory: Path) -> None:
    """Remove an earlier sandbox project at `directory`; refuse to delete anything else."""
    config = directory / CONFIG_FILE
    if not directory.exists():
        return
    if (
        not config.is_file()
        or read_config(config).template != "sandbox"
        or not (directory / STATE_DIR).is_dir()
    ):
        raise TetherInputError(f"{directory} exists and is not an earlier sandbox demo; choose another --dir")
    shutil.rmtree(directory)


def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to create the demo project.")] = Path(
        "demo-project"
    ),
    fresh: Annotated[bool, typer.Option(help="Replace an earlier demo project in the same place.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the sandbox world.")] = 0,
    pairs: Annotated[int, typer.Option(min=100, help="Pairs judged by the health check.")] = 2000,
) -> None:
    """Create a sandbox project, build its world, and check its health figures."""
    start = time.perf_counter()
    if fresh:
        _clear_previous_demo(directory)
    console.print(Rule("1. project"))
    project = init_project(directory, template="sandbox")
    console.print(f"created {escape(str(project.root))} (spec {short_hash(project.spec_hash)})")
    console.print(Rule("2. sandbox world"))
    sandbox_cmd.build(project=project.root, seed=seed)
    console.print(Rule("3. health check"))
    sandbox_cmd.check(project=project.root, pairs=pairs, seed=seed)
    console.print(Rule("done"))
    console.print(
        f"demo finished in {time.perf_counter() - start:.0f} s; project in {escape(str(project.root))}"
    )
