"""What an RL run consumes: the SFT policy, the reward model (gated), the prompt pool.

Each model input is an artifact id or a directory, defaulting to the project's latest artifact of its
kind (`tether.artifacts.resolve`), and is recorded with its id, path and content hash so the run can
be traced to it. A reward model that has not passed its gate (`tether rm eval --gate`) is refused
unless forced (`tether.artifacts.require_passed_gate`); the override is recorded in tether_rl.json
and in the run's row. This module adds the prompt pool and the checkpoints a run resumes from.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tether.artifacts import RL_CHECKPOINT_KIND
from tether.conversation import Conversation, Prompt
from tether.errors import TetherInputError
from tether.rl.prompts import PromptItem
from tether.store import find_artifact_by_path, get_artifact, list_prompts

if TYPE_CHECKING:
    from tether.project import Project


def pool_prompts(project: Project) -> list[PromptItem]:
    """The project's "pool" prompts (never the held-out "eval" split), in insertion order."""
    with project.store.session() as session:
        records = list_prompts(session, project_id=project.project_id, split="pool")
    if not records:
        raise TetherInputError(
            "the project has no pool prompts to train on; add some with `tether label import` "
            "or build the sandbox with `tether sandbox build`"
        )
    return [PromptItem(r.key, r.text, r.stratum, r.meta, r.source, _messages(r.prompt)) for r in records]


def _messages(prompt: Prompt) -> Conversation | None:
    return None if isinstance(prompt, str) else prompt


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
