"""`tether init`: create a project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tether.cli.common import console
from tether.errors import TetherInputError
from tether.scaffold import TEMPLATES, init_project
from tether.spec import short_hash


def init(
    directory: Annotated[Path, typer.Argument(help="Directory to create the project in.")],
    template: Annotated[str, typer.Option(help="Template: blank, sandbox or assistant.")] = "blank",
    name: Annotated[str | None, typer.Option(help="Project name (default: the directory name).")] = None,
    policy: Annotated[
        Path | None,
        typer.Option(help="Register this model directory as the SFT policy (as `tether policy register`)."),
    ] = None,
) -> None:
    """Create a project: tether.toml, spec.yaml, anchors.jsonl, suites/ and the store."""
    if template not in TEMPLATES:
        raise TetherInputError(
            f"--template: unknown template '{template}'; choose one of {', '.join(TEMPLATES)}"
        )
    project = init_project(directory, template=template, name=name, policy=policy)
    console.print(
        f"[green]created[/] project '{escape(project.config.name)}' in {escape(str(project.root))} "
        f"from the {template} template (spec {short_hash(project.spec_hash)})"
    )
    console.print(f"store: {escape(project.db_url)}")
    if policy is not None:
        from tether.artifacts import POLICY_KIND, latest

        record = latest(project, POLICY_KIND)
        if record is not None:
            console.print(f"SFT policy: {record.id} ({escape(str(policy))})")
    console.print(f"next: cd {escape(str(directory))} && tether spec check")
