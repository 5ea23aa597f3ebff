"""What a reward-model evaluation reads: the checkpoint, its export's held-out rows, and what the
store knows about those pairs (canonical A/B positions; in the sandbox, the gold grader).

    inputs = load_inputs(project, checkpoint=None, data=None, say=print)  # latest RM, its own export

Resolution never guesses silently: each choice is reported through `say`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.artifacts import EXPORT_KIND, REWARD_MODEL_KIND, ResolvedArtifact, is_sandbox, resolve
from tether.conversation import last_user_turn
from tether.errors import TetherInputError

if TYPE_CHECKING:
    from tether.labeling.export import PreferenceRow
    from tether.project import Project
    from tether.reward.evaluate import GoldHook
    from tether.reward.scoring import RewardModel
    from tether.world import EditGuard

CHECKPOINT_META = "tether_reward.json"

Say = Callable[[str], None]


def _quiet(_text: str) -> None:
    return None


@dataclass(frozen=True)
class EvalInputs:
    project: Project
    checkpoint: ResolvedArtifact
    export: ResolvedArtifact
    rows: list[PreferenceRow]
    model: RewardModel

    @property
    def ident(self) -> str:
        return self.checkpoint.record.id if self.checkpoint.record else self.checkpoint.path.name

    def context(self) -> dict[str, str]:
        out = {"reward model": self.checkpoint.describe(), "export": self.export.describe()}
        sources = trained_sources(self.checkpoint.path)
        if sources:  # the raters and imported sources whose labels trained it, with their pairs
            out["trained on"] = ", ".join(f"{name} {n} pairs" for name, n in sources.items())
        return out


def trained_sources(checkpoint: Path) -> dict[str, int]:
    """Pairs per rater or imported source in the export a checkpoint trained on (its
    tether_reward.json); {} for a checkpoint from before exports counted them."""
    file = checkpoint / CHECKPOINT_META
    try:
        meta = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
    except json.JSONDecodeError:
        return {}
    sources = meta.get("export", {}).get("sources") if isinstance(meta, dict) else None
    return {str(k): int(v) for k, v in sources.items()} if isinstance(sources, dict) else {}


def load_inputs(
    project: Project, checkpoint: str | None, data: str | None, *, say: Say = _quiet
) -> EvalInputs:
    """The checkpoint, its export's held-out rows and the loaded model; bad input raises exit-2 errors."""
    from tether.reward.evaluate import heldout_rows
    from tether.reward.scoring import load_reward_model

    ckpt = resolve(project, kind=REWARD_MODEL_KIND, explicit=checkpoint)
    say(f"using {ckpt.describe()}")
    export = resolve_export(project, ckpt.path, data, say=say)
    rows = heldout_rows(export.path)
    model = load_reward_model(ckpt.path)
    return EvalInputs(project, ckpt, export, rows, model)


def recorded_export(checkpoint: Path) -> str | None:
    """The export a checkpoint was trained on, per its tether_reward.json: artifact id, else path."""
    file = checkpoint / CHECKPOINT_META
    if not file.is_file():
        return None
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TetherInputError(f"{file}: not valid JSON ({exc.msg})") from exc
    export = meta.get("export") if isinstance(meta, dict) else None
    if not isinstance(export, dict):
        return None
    for key in ("artifact_id", "path"):
        if isinstance(export.get(key), str) and export[key]:
            return str(export[key])
    return None


def resolve_export(
    project: Project, checkpoint: Path, explicit: str | None, *, say: Say = _quiet
) -> ResolvedArtifact:
    """--data, else the export recorded in the checkpoint (when it still exists), else the latest export."""
    if explicit is None:
        recorded = recorded_export(checkpoint)
        if recorded is not None:
            say(f"the checkpoint's {CHECKPOINT_META} records export {recorded}")
            try:
                found = resolve(project, kind=EXPORT_KIND, explicit=recorded)
            except TetherInputError as exc:
                say(f"the checkpoint's recorded export is unusable ({exc})")
            else:
                say(f"using {found.describe()}")
                return found
    found = resolve(project, kind=EXPORT_KIND, explicit=explicit)
    say(f"using {found.describe()}")
    return found


@dataclass(frozen=True)
class PairContext:
    """What the store knows about exported pairs: canonical positions and, in the sandbox, gold."""

    a_is_chosen: list[bool] | None = None
    gold: GoldHook | None = None
    fair_edit: EditGuard | None = None


def pair_context(project: Project, rows: list[PreferenceRow]) -> PairContext:
    """Whether each row's canonical response A was chosen, and the sandbox's gold hook and edit guard.

    All None when the rows' tasks are not this project's (an export from elsewhere); the gold pieces
    only exist in a sandbox project, whose prompts carry their ground truth.
    """
    from tether.store.tasks import task_view

    positions: list[bool] = []
    metas: dict[int, dict[str, Any]] = {}
    sandbox = is_sandbox(project)
    with project.store.session() as session:
        for row in rows:
            try:
                view = task_view(session, task_id=row.task_id)
            except TetherInputError:
                return PairContext()
            if view.prompt != row.prompt or {view.response_a, view.response_b} != {row.chosen, row.rejected}:
                return PairContext()  # the id names some other task: the export is not from this store
            positions.append(view.response_a == row.chosen)
            metas[row.task_id] = view.prompt_meta
    if not sandbox:
        return PairContext(positions)
    # Only a sandbox project reaches here: its world supplies the gold grader the evaluation reports.
    from tether.world import world_for

    world = world_for(project)
    prompts = [(last_user_turn(row.prompt), metas[row.task_id]) for row in rows]
    return PairContext(positions, world.gold_hook(metas), world.edit_guard(prompts))
