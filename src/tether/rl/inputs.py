"""What an RL run consumes: the SFT policy, the reward model (gated), the prompt pool.

Each model input is an artifact id or a directory, defaulting to the project's latest artifact of its
kind, and is recorded with its id, path and content hash so the run can be traced to it. A reward
model that has not passed its gate (`tether rm eval --gate`) is refused unless forced; the override
is recorded in tether_rl.json and in the run's row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.errors import QualityGateFailed, TetherInputError
from tether.hashing import content_sha256
from tether.hf import require_safetensors
from tether.rl.prompts import PromptItem
from tether.store import find_artifact_by_path, get_artifact, latest_artifact, list_prompts

if TYPE_CHECKING:
    from tether.project import Project

POLICY_KIND = "policy"
REWARD_MODEL_KIND = "reward_model"
RL_CHECKPOINT_KIND = "rl_checkpoint"
WORLD_KIND = "sandbox_world"


@dataclass(frozen=True)
class ModelInput:
    """A model directory the run reads, and its identity in the registry."""

    path: Path
    artifact_id: str | None
    content_sha256: str
    how: str
    """latest, explicit id, explicit path or checkpoint."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "artifact_id": self.artifact_id,
            "content_sha256": self.content_sha256,
        }

    @classmethod
    def from_dict(cls, entry: dict[str, Any], how: str) -> ModelInput:
        """The input `to_dict` recorded (in a checkpoint's meta), read back."""
        return cls(Path(entry["path"]), entry.get("artifact_id"), str(entry["content_sha256"]), how)


@dataclass(frozen=True)
class GateRecord:
    passed: bool
    forced: bool
    report_artifact_id: str | None
    failures: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_model(project: Project, *, kind: str, explicit: str | None) -> ModelInput:
    """An explicit artifact id or directory, else the project's latest artifact of `kind`."""
    project_id = project.project_id
    with project.store.session() as session:
        if explicit is None:
            record = latest_artifact(session, project_id=project_id, kind=kind)
            if record is None:
                raise TetherInputError(f"the project has no {kind} artifact yet; pass one explicitly")
            how = "latest"
        else:
            record = get_artifact(session, artifact_id=explicit)
            how = "explicit id"
            if record is not None and record.kind != kind:
                raise TetherInputError(f"artifact {explicit} is a {record.kind}, not a {kind}")
            if record is None:
                path = Path(explicit)
                if not path.is_dir():
                    raise TetherInputError(f"'{explicit}' is neither a {kind} artifact id nor a directory")
                record = find_artifact_by_path(session, project_id=project_id, path=project.relative(path))
                how = "explicit path"
                if record is None:
                    require_safetensors(path)
                    return ModelInput(path.resolve(), None, content_sha256(path), how)
    path = project.resolve(record.path)
    require_safetensors(path)
    return ModelInput(path, record.id, record.content_hash, how)


def check_gate(project: Project, reward_model: ModelInput, *, force: bool) -> GateRecord:
    """The RM's gate verdict; raises QualityGateFailed (exit 3) when it did not pass and not `force`."""
    from tether.reward.gate import gate_status

    if reward_model.artifact_id is None:
        failures = [
            f"{reward_model.path} is not a registered reward model, so it has no gate verdict; "
            "register it with `tether rm train` and gate it with `tether rm eval --gate`"
        ]
        report = None
        passed = False
    else:
        status = gate_status(project, reward_model.artifact_id)
        passed, report, failures = status.passed, status.report_artifact_id, status.failures
    if not passed and not force:
        ident = reward_model.artifact_id or str(reward_model.path)
        raise QualityGateFailed(
            f"reward model {ident} has not passed its gate: {'; '.join(failures)}. "
            "Or pass --force to train on it anyway (the override is recorded with the run)"
        )
    return GateRecord(passed=passed, forced=not passed, report_artifact_id=report, failures=failures)


def pool_prompts(project: Project) -> list[PromptItem]:
    """The project's "pool" prompts (never the held-out "eval" split), in insertion order."""
    with project.store.session() as session:
        records = list_prompts(session, project_id=project.project_id, split="pool")
    if not records:
        raise TetherInputError(
            "the project has no pool prompts to train on; add some with `tether label import` "
            "or build the sandbox with `tether sandbox build`"
        )
    return [PromptItem(r.key, r.text, r.stratum, r.meta, r.source) for r in records]


def is_sandbox(project: Project) -> bool:
    with project.store.session() as session:
        return latest_artifact(session, project_id=project.project_id, kind=WORLD_KIND) is not None


def resolve_checkpoint(project: Project, explicit: str, option: str = "--from") -> tuple[Path, str | None]:
    """An RL checkpoint given as an `rl_checkpoint` artifact id or a directory -> (path, artifact id);
    errors name the CLI `option` it came from."""
    with project.store.session() as session:
        record = get_artifact(session, artifact_id=explicit)
        if record is not None:
            if record.kind != RL_CHECKPOINT_KIND:
                raise TetherInputError(f"artifact {explicit} is a {record.kind}, not an {RL_CHECKPOINT_KIND}")
            return project.resolve(record.path), record.id
        path = Path(explicit)
        if not path.is_dir():
            raise TetherInputError(
                f"{option} '{explicit}' is neither an rl_checkpoint artifact id nor a checkpoint directory"
            )
        found = find_artifact_by_path(session, project_id=project.project_id, path=project.relative(path))
    return path.resolve(), found.id if found else None
