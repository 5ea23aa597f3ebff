"""Artifact kinds, and which artifact a stage consumes.

Every file or directory a stage makes or reads is registered under one of the kinds below, with its
content hash, spec version and parents (the lineage). A stage never guesses its inputs: `resolve`
takes what the user passed (an artifact id or a path) or else the project's latest artifact of the
kind, says how it chose, and fails with exit 2 naming the command that makes the missing one.

    resolve(project, kind=POLICY_KIND, explicit=None)          # the registered SFT policy
    resolve(project, kind=REWARD_MODEL_KIND, explicit="rm/")   # a directory, registered or not

Model kinds must be safetensors directories (`tether.hf.require_safetensors`); `ModelInput` is a
resolved model with the id and content hash a run records (in tether_rl.json and its run row).
`require_passed_gate` is how a stage that trains against a reward model reads its stored gate verdict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.errors import QualityGateFailed, TetherInputError
from tether.hashing import content_sha256
from tether.hf import require_safetensors
from tether.store import ArtifactRecord, find_artifact_by_path, get_artifact, latest_artifact, list_artifacts

if TYPE_CHECKING:
    from tether.project import Project

POLICY_KIND = "policy"
"""A causal LM to sample from: the SFT policy (`tether policy register`, or the sandbox build)."""
REWARD_MODEL_KIND = "reward_model"
"""A Bradley–Terry reward model (`tether rm train`)."""
RM_EVAL_KIND = "rm_eval"
"""A reward model's evaluation, and its gate verdict when gated (`tether rm eval --gate`)."""
RL_CHECKPOINT_KIND = "rl_checkpoint"
"""A saved RL policy with everything needed to resume its run (`tether rl run`)."""
EXPORT_KIND = "export"
"""A preference dataset (`tether data export`)."""
EVAL_RUN_KIND = "eval_run"
"""One behavioral eval run of one policy (`tether eval run`)."""
REDTEAM_SEARCH_KIND = "redteam_search"
"""A red-team search's findings (`tether redteam search`)."""
SANDBOX_WORLD_KIND = "sandbox_world"
"""The sandbox's world file; its presence is what makes a project a sandbox project."""
SFT_CORPUS_KIND = "sft_corpus"
"""The sandbox's SFT corpus, the parent of its policy."""
ANCHORS_KIND = "anchors"
"""The sandbox's expert anchors, derived from its gold grader."""

MODEL_KINDS = (POLICY_KIND, REWARD_MODEL_KIND, RL_CHECKPOINT_KIND)
"""Kinds that are Hugging Face model directories, loaded from safetensors only."""
POLICY_KINDS = (RL_CHECKPOINT_KIND, POLICY_KIND)
"""What a stage may sample from; as a resolve `kind`, the newest RL checkpoint, else the SFT policy."""

POLICY_ROLES = ("sft", "baseline")
"""sft: the policy every stage defaults to. baseline: registered to compare against, never a default."""

MAKES: dict[str, str] = {
    POLICY_KIND: "register your SFT model with `tether policy register PATH` (sandbox: tether sandbox build)",
    REWARD_MODEL_KIND: "train one with `tether rm train`",
    RM_EVAL_KIND: "evaluate a reward model with `tether rm eval`",
    RL_CHECKPOINT_KIND: "train one with `tether rl run`",
    EXPORT_KIND: "export the labels with `tether data export`",
    EVAL_RUN_KIND: "run `tether eval run`",
    REDTEAM_SEARCH_KIND: "run `tether redteam search`",
}
"""How a missing artifact of each kind is made, for the error that names it."""


@dataclass(frozen=True)
class ResolvedArtifact:
    """An input a stage consumes, and how it was chosen."""

    path: Path
    record: ArtifactRecord | None
    """Its registry entry; None for a path nothing was registered at."""
    how: str
    """latest, explicit id or explicit path."""
    kind: str
    """The kind that was asked for (a path's record may be of another kind)."""

    @property
    def artifact_id(self) -> str | None:
        return self.record.id if self.record else None

    def describe(self) -> str:
        return f"{self.kind} {self.artifact_id or 'unregistered'} ({self.path}) [{self.how}]"


def is_default_policy(record: ArtifactRecord) -> bool:
    """Policies registered before roles existed count as SFT."""
    return record.kind != POLICY_KIND or record.meta.get("role", "sft") == "sft"


def latest(project: Project, kind: str | tuple[str, ...]) -> ArtifactRecord | None:
    """The newest artifact of `kind` (of the first kind that has one, for a tuple); for policies, the
    newest SFT one."""
    with project.store.session() as session:
        for one in (kind,) if isinstance(kind, str) else kind:
            if one == POLICY_KIND:
                found = list_artifacts(session, project_id=project.project_id, kind=one)
                record = next((r for r in reversed(found) if is_default_policy(r)), None)
            else:
                record = latest_artifact(session, project_id=project.project_id, kind=one)
            if record is not None:
                return record
    return None


def _names(kind: str | tuple[str, ...]) -> str:
    return kind if isinstance(kind, str) else " or ".join(kind)


def _missing(kind: str | tuple[str, ...]) -> TetherInputError:
    kinds = (kind,) if isinstance(kind, str) else kind
    hint = MAKES.get(kinds[-1], "make one first")
    return TetherInputError(f"the project has no {_names(kind)} artifact yet; {hint}, or pass one explicitly")


def resolve(project: Project, *, kind: str | tuple[str, ...], explicit: str | None) -> ResolvedArtifact:
    """An explicit artifact id or path, else the project's latest artifact of `kind` (exit 2 if none).

    A tuple of kinds accepts any of them, and defaults to the newest of the first kind that has one.
    Models are checked to be safetensors directories before any stage loads them."""
    kinds = (kind,) if isinstance(kind, str) else kind
    named = _names(kind)
    if explicit is None:
        record = latest(project, kind)
        if record is None:
            raise _missing(kind)
        resolved = ResolvedArtifact(project.resolve(record.path), record, "latest", record.kind)
    else:
        resolved = _explicit(project, kinds, named, explicit)
    if resolved.kind in MODEL_KINDS:
        require_safetensors(resolved.path)
    return resolved


def _explicit(project: Project, kinds: tuple[str, ...], named: str, explicit: str) -> ResolvedArtifact:
    with project.store.session() as session:
        record = get_artifact(session, artifact_id=explicit)
        if record is not None and record.project_id != project.project_id:
            record = None
        if record is not None:
            if record.kind not in kinds:
                raise TetherInputError(f"artifact {explicit} is a {record.kind}, not a {named}")
            return ResolvedArtifact(project.resolve(record.path), record, "explicit id", record.kind)
        path = Path(explicit)
        if not path.exists():
            what = "a model directory" if set(kinds) <= set(MODEL_KINDS) else "its path"
            raise TetherInputError(
                f"'{explicit}' is neither an artifact id nor an existing path (pass a {named} artifact id "
                f"or {what})"
            )
        found = find_artifact_by_path(session, project_id=project.project_id, path=project.relative(path))
    # A path registered under another kind (an RL checkpoint used as a policy) keeps its record, so
    # the lineage still reaches it.
    return ResolvedArtifact(path.resolve(), found, "explicit path", kinds[-1])


@dataclass(frozen=True)
class ModelInput:
    """A model directory a run reads, and its identity in the registry."""

    path: Path
    artifact_id: str | None
    content_sha256: str
    how: str
    """latest, explicit id, explicit path or checkpoint."""

    @classmethod
    def of(cls, resolved: ResolvedArtifact) -> ModelInput:
        """A resolved model; an unregistered directory is hashed here, so a run still records it."""
        require_safetensors(resolved.path)
        record = resolved.record
        digest = record.content_hash if record else content_sha256(resolved.path)
        return cls(resolved.path, resolved.artifact_id, digest, resolved.how)

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


def is_sandbox(project: Project) -> bool:
    """Whether the project holds the sandbox world (simulated raters, gold grader)."""
    return latest(project, SANDBOX_WORLD_KIND) is not None


# --- the reward model's gate, as a consumer reads it ----------------------------------------------------


@dataclass(frozen=True)
class GateRecord:
    """The gate verdict a run trained against, recorded with it (and whether it was overridden)."""

    passed: bool
    forced: bool
    report_artifact_id: str | None
    failures: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def require_passed_gate(project: Project, reward_model: ModelInput, *, force: bool) -> GateRecord:
    """The RM's stored gate verdict; raises QualityGateFailed (exit 3) when it did not pass and not
    `force`. (`tether.reward.gate.check_gate` is what computes a verdict from an evaluation.)"""
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
