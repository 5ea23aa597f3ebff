"""Shared CLI pieces: consoles, the --project option, error mapping and artifact resolution."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from tether.errors import TetherError, TetherInputError
from tether.project import Project
from tether.store import ArtifactRecord, find_artifact_by_path, get_artifact, latest_artifact

# Wide when piped (logs, CI): rich would otherwise squeeze tables into 80 columns.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 160)

ProjectOption = Annotated[
    Path | None,
    typer.Option("--project", "-p", help="Project directory (default: found from the current directory)."),
]


class TetherGroup(TyperGroup):
    """Root command group: turns Tether's errors into messages and exit codes (2 input, 3 gate)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, **kwargs)
        except TetherError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
            sys.exit(exc.exit_code)


def open_project(path: Path | None) -> Project:
    return Project.open(path)


@dataclass(frozen=True)
class ResolvedArtifact:
    """An input a command consumes, and how it was chosen."""

    path: Path
    record: ArtifactRecord | None
    how: str

    def describe(self) -> str:
        ident = self.record.id if self.record else "unregistered"
        return f"{ident} ({self.path}) [{self.how}]"


def resolve_artifact(project: Project, *, kind: str, explicit: str | None) -> ResolvedArtifact:
    """An explicit artifact id or path, else the project's latest artifact of `kind`.

    Always prints which one it used, so a run's inputs are never a guess.
    """
    resolved = _resolve(project, kind=kind, explicit=explicit)
    console.print(f"[dim]using {kind}[/] {escape(resolved.describe())}")
    return resolved


def _resolve(project: Project, *, kind: str, explicit: str | None) -> ResolvedArtifact:
    with project.store.session() as session:
        if explicit is None:
            record = latest_artifact(session, project_id=project.project_id, kind=kind)
            if record is None:
                raise TetherInputError(f"the project has no {kind} artifact yet; pass one explicitly")
            return ResolvedArtifact(project.resolve(record.path), record, "latest")
        record = get_artifact(session, artifact_id=explicit)
        if record is not None:
            if record.kind != kind:
                raise TetherInputError(f"artifact {explicit} is a {record.kind}, not a {kind}")
            return ResolvedArtifact(project.resolve(record.path), record, "explicit id")
        path = Path(explicit)
        if not path.exists():
            raise TetherInputError(f"'{explicit}' is neither an artifact id nor an existing path")
        record = find_artifact_by_path(session, project_id=project.project_id, path=project.relative(path))
        return ResolvedArtifact(path.resolve(), record, "explicit path")
