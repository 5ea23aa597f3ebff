"""`tether lineage ARTIFACT`: how an artifact came to be, as a tree of the artifacts it was made from.

Every node names its kind, id, spec version and what matters for its kind: an export's raters and
labeling batches, a reward model's training pairs, an RL checkpoint's run and whether its gate was
overridden, the SFT policy's name, architecture and content hash. The loop iterations that produced
or used any node are listed with it.

An RL checkpoint's tether_rl.json records the SFT policy it started from (path and content hash). A
run started from a directory that was registered only later (`tether policy register`) still reaches
its policy node: the recorded hash is matched against the registered policies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tether.artifacts import EXPORT_KIND, POLICY_KIND, REWARD_MODEL_KIND, RL_CHECKPOINT_KIND, RM_EVAL_KIND
from tether.store import ArtifactRecord, get_artifact, lineage, list_artifacts, list_runs
from tether.store.iterations import IterationRecord, list_iterations

if TYPE_CHECKING:
    from tether.project import Project
    from tether.store import DbSession, RunRecord

RL_META_FILE = "tether_rl.json"
"""tether.rl.checkpoint.META_FILE, named here because importing that module loads torch."""


@dataclass(frozen=True)
class LineageNode:
    id: str
    kind: str
    path: str
    spec_hash: str
    details: dict[str, Any]
    iterations: list[int]
    children: list[LineageNode] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "path": self.path,
            "spec_hash": self.spec_hash,
            "details": self.details,
            "iterations": self.iterations,
            "parents": [c.to_dict() for c in self.children],
        }


def node_details(record: ArtifactRecord, runs: Sequence[RunRecord]) -> dict[str, Any]:
    """The few facts of an artifact that explain it, by kind."""
    meta = record.meta
    if record.kind == EXPORT_KIND:
        keys = ("raters", "raters_left_out", "batches", "origins", "train", "test", "include_excluded")
        return {k: meta[k] for k in keys if k in meta}
    if record.kind == REWARD_MODEL_KIND:
        return {
            "train_pairs": meta.get("train_pairs"),
            "heldout_accuracy": (meta.get("metrics") or {}).get("test/accuracy"),
        }
    if record.kind == RL_CHECKPOINT_KIND:
        made_by = [r for r in runs if r.artifact_id == record.id]
        out: dict[str, Any] = {
            "algo": meta.get("algo"),
            "step": meta.get("step"),
            "gate_forced": meta.get("gate_forced"),
        }
        if made_by:
            out |= {
                "run": made_by[-1].id,
                "run_status": made_by[-1].status,
                "reason": made_by[-1].reason_stopped,
            }
        return out
    if record.kind == RM_EVAL_KIND:
        return {"gate": meta.get("gate"), "accuracy": meta.get("accuracy")}
    if record.kind == POLICY_KIND:
        shown = ("name", "role", "architecture", "model_type", "parameters", "seed", "final_loss")
        return {k: meta[k] for k in shown if k in meta} | {"content_sha256": record.content_hash}
    return {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool))}


def iterations_using(artifact_id: str, iterations: Sequence[IterationRecord]) -> list[int]:
    """Numbers of the iterations whose recorded artifacts include `artifact_id`."""
    return [i.number for i in iterations if artifact_id in {str(v) for v in i.artifacts.values()}]


def build_tree(
    root: str,
    records: Mapping[str, ArtifactRecord],
    runs: Sequence[RunRecord],
    iterations: Sequence[IterationRecord],
    _seen: frozenset[str] = frozenset(),
) -> LineageNode:
    """The tree under `root`; an ancestor reached twice is expanded once (later mentions are leaves)."""
    record = records[root]
    children = (
        []
        if root in _seen
        else [
            build_tree(p, records, runs, iterations, _seen | {root}) for p in record.parents if p in records
        ]
    )
    return LineageNode(
        record.id,
        record.kind,
        record.path,
        record.spec_hash,
        node_details(record, runs),
        iterations_using(record.id, iterations),
        children,
    )


def artifact_lineage(project: Project, artifact_id: str) -> LineageNode:
    """The lineage tree of one artifact of `project`; TetherInputError when it is unknown."""
    from tether.errors import TetherInputError

    with project.store.session() as session:
        if get_artifact(session, artifact_id=artifact_id) is None:
            raise TetherInputError(
                f"no artifact '{artifact_id}' in this project; `tether lineage` takes an artifact id"
            )
        records = {r.id: r for r in lineage(session, artifact_id=artifact_id)}
        records = _with_recorded_policies(project, session, records)
        runs = list_runs(session, project_id=project.project_id)
        iterations = list_iterations(session, project_id=project.project_id)
    return build_tree(artifact_id, records, runs, iterations)


def recorded_sft_sha256(project: Project, record: ArtifactRecord) -> str | None:
    """The SFT policy's content hash an RL checkpoint's tether_rl.json records, if readable."""
    file = project.resolve(record.path) / RL_META_FILE
    try:
        sft = json.loads(file.read_text(encoding="utf-8")).get("sft") or {}
    except (OSError, ValueError, AttributeError):
        return None
    digest = sft.get("content_sha256") if isinstance(sft, dict) else None
    return digest if isinstance(digest, str) else None


def _with_recorded_policies(
    project: Project, session: DbSession, records: dict[str, ArtifactRecord]
) -> dict[str, ArtifactRecord]:
    """RL checkpoints with no policy parent get the registered policy their tether_rl.json names."""
    out = dict(records)
    policies: list[ArtifactRecord] | None = None
    for record in records.values():
        if record.kind != RL_CHECKPOINT_KIND:
            continue
        if any(out[p].kind == POLICY_KIND for p in record.parents if p in out):
            continue
        digest = recorded_sft_sha256(project, record)
        if digest is None:
            continue
        if policies is None:
            policies = list_artifacts(session, project_id=project.project_id, kind=POLICY_KIND)
        match = next((p for p in reversed(policies) if p.content_hash == digest), None)
        if match is not None:
            out[record.id] = replace(record, parents=(*record.parents, match.id))
            out.setdefault(match.id, match)
    return out


RUN_SPECIFIC = ("run", "run_status", "reason")
"""Details that name one run rather than what it made (a resumed run has another id)."""


def lineage_signature(node: LineageNode) -> list[tuple[str, str, str]]:
    """(kind, spec hash, details) of every node, depth first: equal when two loops made the same things
    from the same inputs, whatever their run ids and directories."""
    details = json.dumps({k: v for k, v in node.details.items() if k not in RUN_SPECIFIC}, sort_keys=True)
    out = [(node.kind, node.spec_hash, details)]
    for child in node.children:
        out.extend(lineage_signature(child))
    return out
