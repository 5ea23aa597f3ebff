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

from tether.artifacts import POLICY_KIND, POLICY_KINDS, ResolvedArtifact, resolve
from tether.errors import TetherInputError

if TYPE_CHECKING:
    from tether.project import Project


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


def _evaluated(resolved: ResolvedArtifact, label: str) -> EvaluatedPolicy:
    record = resolved.record
    if record is None or record.kind not in POLICY_KINDS:
        # A directory registered as something else (or not at all) is evaluated as a plain directory.
        return EvaluatedPolicy(resolved.path, None, "directory", label)
    return EvaluatedPolicy(resolved.path, record.id, record.kind, label)


def resolve_policy(project: Project, checkpoint: str = "latest") -> EvaluatedPolicy:
    """The policy `checkpoint` names; TetherInputError saying what exists when it names nothing."""
    if checkpoint in ("sft", "latest"):
        kind = POLICY_KIND if checkpoint == "sft" else POLICY_KINDS
        try:
            return _evaluated(resolve(project, kind=kind, explicit=None), checkpoint)
        except TetherInputError as exc:
            raise TetherInputError(f"policy '{checkpoint}': {exc}") from None
    try:
        return _evaluated(resolve(project, kind=POLICY_KINDS, explicit=checkpoint), checkpoint)
    except TetherInputError as exc:
        if "neither an artifact id nor an existing path" not in str(exc):
            raise
        raise TetherInputError(
            f"policy '{checkpoint}' is not sft, latest, a policy or rl_checkpoint artifact id, "
            "or a model directory"
        ) from None
