"""Registering a team's own SFT policy: `tether policy register PATH`.

    tether policy register /models/my-sft --name my-sft     # validate, hash, register; prints its id
    tether policy list

The directory must hold a Hugging Face causal LM: safetensors weights (never pickles), a config
whose architecture is a causal LM, and a tokenizer that loads. Registration records a `policy`
artifact with its content hash; every later stage (label plan, rm train, rl run, evals, the loop,
lineage) defaults to the newest one with role sft. The same content gives the same id, so
registering again is harmless. The sandbox build registers its policy through here too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.artifacts import POLICY_KIND, POLICY_ROLES
from tether.errors import TetherInputError
from tether.hashing import content_sha256
from tether.hf import require_safetensors
from tether.store import ArtifactRecord, list_artifacts, register_artifact

if TYPE_CHECKING:
    from tether.project import Project


@dataclass(frozen=True)
class PolicyCheck:
    """What validation found in a policy directory (recorded in the artifact's meta)."""

    architecture: str
    model_type: str
    vocab_size: int | None
    chat_template: bool
    """Whether the tokenizer has a chat template (else prompts get a blank line, see tether.hf)."""
    pad_token: bool
    """Whether the tokenizer names a pad token (else the stages pad with EOS)."""

    def to_meta(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture,
            "model_type": self.model_type,
            "vocab_size": self.vocab_size,
            "chat_template": self.chat_template,
            "pad_token": self.pad_token,
        }


@dataclass(frozen=True)
class Registration:
    record: ArtifactRecord
    created: bool
    """False when the same content was registered already (the existing record is returned)."""


def _causal_lm_architecture(path: Path) -> tuple[str, str, int | None]:
    """(architecture, model_type, vocab size) from config.json; TetherInputError unless a causal LM."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if not (path / "config.json").is_file():
        raise TetherInputError(f"{path}: no config.json; save the model with model.save_pretrained(path)")
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError, KeyError) as exc:
        raise TetherInputError(f"{path}/config.json does not load: {exc}") from None
    causal = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    declared = list(getattr(config, "architectures", None) or [])
    # The architecture the weights were saved from decides: a BERT classifier has a model type with a
    # causal-LM head in transformers, but its weights are not one.
    if declared:
        found = next((a for a in declared if a in causal), None)
        if found is None:
            raise TetherInputError(
                f"{path}: the config's architecture {', '.join(declared)} is not a causal language model; "
                "Tether samples from the policy, so it needs an AutoModelForCausalLM checkpoint"
            )
        return found, config.model_type, getattr(config, "vocab_size", None)
    name = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(config.model_type)
    if name is None:
        raise TetherInputError(f"{path}: model type '{config.model_type}' has no causal-LM architecture")
    return name, config.model_type, getattr(config, "vocab_size", None)


def check_policy_dir(path: Path) -> PolicyCheck:
    """Validate a policy directory before anything is registered; TetherInputError (exit 2) naming
    what is wrong: not a directory, pickled weights, not a causal LM, no tokenizer."""
    from transformers import AutoTokenizer

    from tether.hf import quiet_transformers

    if not path.exists():
        raise TetherInputError(f"{path}: no such directory")
    if not path.is_dir():
        raise TetherInputError(f"{path} is a file; pass the model's directory (config, weights, tokenizer)")
    require_safetensors(path)
    quiet_transformers()
    architecture, model_type, vocab = _causal_lm_architecture(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise TetherInputError(
            f"{path}: no tokenizer loads from it ({type(exc).__name__}); save it beside the weights with "
            "tokenizer.save_pretrained(path)"
        ) from None
    return PolicyCheck(
        architecture=architecture,
        model_type=model_type,
        vocab_size=vocab,
        chat_template=bool(getattr(tokenizer, "chat_template", None)),
        pad_token=tokenizer.pad_token is not None,
    )


def list_policies(project: Project) -> list[ArtifactRecord]:
    """The project's registered policies, oldest first."""
    with project.store.session() as session:
        return list_artifacts(session, project_id=project.project_id, kind=POLICY_KIND)


def _same_content(project: Project, digest: str) -> ArtifactRecord | None:
    """A policy already registered with this content whose directory is still there."""
    for record in reversed(list_policies(project)):
        if record.content_hash == digest and project.resolve(record.path).is_dir():
            return record
    return None


def register_policy(
    project: Project,
    path: Path,
    *,
    name: str | None = None,
    role: str = "sft",
    parents: Iterable[str] = (),
    meta: dict[str, Any] | None = None,
) -> Registration:
    """Validate `path`, hash it and register it as a `policy` artifact (idempotent on its content)."""
    if role not in POLICY_ROLES:
        raise TetherInputError(f"--role: unknown role '{role}'; choose one of {', '.join(POLICY_ROLES)}")
    check = check_policy_dir(path)
    digest = content_sha256(path)
    existing = _same_content(project, digest)
    if existing is not None:
        return Registration(existing, created=False)
    project_id, spec_hash = project.project_id, project.spec_hash
    recorded = {**check.to_meta(), "name": name or path.resolve().name, **(meta or {}), "role": role}
    with project.store.session() as session:
        record = register_artifact(
            session,
            project_id=project_id,
            kind=POLICY_KIND,
            path=project.relative(path),
            content_hash=digest,
            spec_hash=spec_hash,
            parents=parents,
            meta=recorded,
        )
    return Registration(record, created=True)
