"""Which policy an eval run samples: "sft", "latest", an artifact id or a model directory.

sft       the project's latest `policy` artifact (the SFT baseline)
latest    the latest `rl_checkpoint` artifact, else the SFT policy
<id>      a `policy` or `rl_checkpoint` artifact id
<dir>     a Hugging Face model directory (safetensors), registered or not
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tether.errors import TetherInputError
from tether.hf import require_safetensors
from tether.rl.inputs import POLICY_KIND, RL_CHECKPOINT_KIND
from tether.store import ArtifactRecord, find_artifact_by_path, get_artifact, latest_artifact

if TYPE_CHECKING:
    from tether.project import Project

POLICY_KINDS = (POLICY_KIND, RL_CHECKPOINT_KIND)


@dataclass(frozen=True)
class EvaluatedPolicy:
    """A resolved policy to evaluate."""

    path: Path
    artifact_id: str | None
    kind: str
    """policy (SFT), rl_checkpoint, or "directory" for an unregistered model directory."""
    label: str
    """What the user asked for: sft, latest, an id or a path."""

    @property
    def name(self) -> str:
        """How tables name it: the artifact id, else the directory."""
        return self.artifact_id or str(self.path)


def _from_record(project: Project, record: ArtifactRecord, label: str) -> EvaluatedPolicy:
    path = project.resolve(record.path)
    require_safetensors(path)
    return EvaluatedPolicy(path, record.id, record.kind, label)


def _latest(project: Project, kind: str) -> ArtifactRecord | None:
    with project.store.session() as session:
        return latest_artifact(session, project_id=project.project_id, kind=kind)


def resolve_policy(project: Project, checkpoint: str = "latest") -> EvaluatedPolicy:
    """The policy `checkpoint` names; TetherInputError saying what exists when it names nothing."""
    if checkpoint in ("sft", "latest"):
        record = _latest(project, RL_CHECKPOINT_KIND) if checkpoint == "latest" else None
        record = record or _latest(project, POLICY_KIND)
        if record is None:
            raise TetherInputError(
                f"policy '{checkpoint}': the project has no SFT policy artifact yet; register one "
                "(`tether sandbox build` does in the sandbox) or pass a model directory"
            )
        return _from_record(project, record, checkpoint)
    with project.store.session() as session:
        record = get_artifact(session, artifact_id=checkpoint)
        if record is None and Path(checkpoint).is_dir():
            found = find_artifact_by_path(
                session, project_id=project.project_id, path=project.relative(Path(checkpoint))
            )
            record = found if found is not None and found.kind in POLICY_KINDS else None
            if record is None:
                require_safetensors(Path(checkpoint))
                return EvaluatedPolicy(Path(checkpoint).resolve(), None, "directory", checkpoint)
    if record is None:
        raise TetherInputError(
            f"policy '{checkpoint}' is not sft, latest, a policy or rl_checkpoint artifact id, "
            "or a model directory"
        )
    if record.kind not in POLICY_KINDS:
        raise TetherInputError(f"policy '{checkpoint}': artifact is a {record.kind}, not a policy")
    return _from_record(project, record, checkpoint)
