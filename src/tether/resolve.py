"""Which artifact a stage consumes: an explicit id or path, else the project's latest of a kind.

Library code resolves through here and reports the choice through its own callback; the CLI's
`resolve_artifact` wraps it and prints the choice, so a run's inputs are never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tether.errors import TetherInputError
from tether.store import ArtifactRecord, find_artifact_by_path, get_artifact, latest_artifact

if TYPE_CHECKING:
    from tether.project import Project


@dataclass(frozen=True)
class ResolvedArtifact:
    """An input a command consumes, and how it was chosen."""

    path: Path
    record: ArtifactRecord | None
    how: str

    def describe(self) -> str:
        ident = self.record.id if self.record else "unregistered"
        return f"{ident} ({self.path}) [{self.how}]"


def resolve(project: Project, *, kind: str, explicit: str | None) -> ResolvedArtifact:
    """An explicit artifact id or path, else the project's latest artifact of `kind` (exit 2 if none)."""
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
