"""The one artifact resolver, against a real SQLite store and real directories."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from tether.artifacts import (
    EXPORT_KIND,
    POLICY_KIND,
    POLICY_KINDS,
    REWARD_MODEL_KIND,
    RL_CHECKPOINT_KIND,
    ModelInput,
    is_sandbox,
    resolve,
)
from tether.errors import TetherInputError
from tether.hashing import content_sha256
from tether.project import Project
from tether.scaffold import init_project
from tether.store import ArtifactRecord, register_artifact

SRC = Path(__file__).resolve().parents[1] / "src" / "tether"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return init_project(tmp_path / "p", template="assistant")


def fake_model(path: Path) -> Path:
    """A directory with a safetensors file: all the resolver checks (no model loads here)."""
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"not really weights")
    (path / "config.json").write_text("{}", encoding="utf-8")
    return path


def register(project: Project, kind: str, path: Path, **meta: object) -> ArtifactRecord:
    project_id = project.project_id
    with project.store.session() as session:
        return register_artifact(
            session,
            project_id=project_id,
            kind=kind,
            path=project.relative(path),
            content_hash=content_sha256(path),
            spec_hash=project.spec_hash,
            meta=dict(meta),
        )


def test_latest_of_kind_and_explicit_id(project: Project, tmp_path: Path) -> None:
    first = register(project, POLICY_KIND, fake_model(tmp_path / "a"))
    second = register(project, POLICY_KIND, fake_model(tmp_path / "b"))
    latest = resolve(project, kind=POLICY_KIND, explicit=None)
    assert (latest.record, latest.how, latest.path) == (second, "latest", tmp_path / "b")
    chosen = resolve(project, kind=POLICY_KIND, explicit=first.id)
    assert (chosen.artifact_id, chosen.how) == (first.id, "explicit id")
    assert chosen.describe() == f"policy {first.id} ({tmp_path / 'a'}) [explicit id]"


def test_a_path_finds_its_record_or_stays_unregistered(project: Project, tmp_path: Path) -> None:
    record = register(project, REWARD_MODEL_KIND, fake_model(tmp_path / "rm"))
    found = resolve(project, kind=REWARD_MODEL_KIND, explicit=str(tmp_path / "rm"))
    assert (found.record, found.how) == (record, "explicit path")
    loose = resolve(project, kind=REWARD_MODEL_KIND, explicit=str(fake_model(tmp_path / "loose")))
    assert loose.record is None and loose.describe().startswith("reward_model unregistered")
    model = ModelInput.of(loose)
    assert model.artifact_id is None and model.content_sha256 == content_sha256(tmp_path / "loose")
    assert ModelInput.from_dict(model.to_dict(), "checkpoint").content_sha256 == model.content_sha256


def test_wrong_kind_missing_and_unknown_are_input_errors(project: Project, tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    record = register(project, EXPORT_KIND, export)
    with pytest.raises(TetherInputError, match=f"artifact {record.id} is a export, not a policy"):
        resolve(project, kind=POLICY_KIND, explicit=record.id)
    with pytest.raises(TetherInputError, match=r"no policy artifact yet.*tether policy register PATH"):
        resolve(project, kind=POLICY_KIND, explicit=None)
    with pytest.raises(TetherInputError, match="neither an artifact id nor an existing path"):
        resolve(project, kind=REWARD_MODEL_KIND, explicit="no-such-thing")
    # an existing export directory is fine as it is; a model directory must hold safetensors
    assert resolve(project, kind=EXPORT_KIND, explicit=str(export)).record == record
    with pytest.raises(TetherInputError, match="Tether never unpickles"):
        resolve(project, kind=POLICY_KIND, explicit=str(export))


def test_a_baseline_policy_is_never_the_default(project: Project, tmp_path: Path) -> None:
    sft = register(project, POLICY_KIND, fake_model(tmp_path / "sft"), role="sft")
    register(project, POLICY_KIND, fake_model(tmp_path / "other"), role="baseline")
    assert resolve(project, kind=POLICY_KIND, explicit=None).record == sft


def test_policy_kinds_default_to_the_newest_rl_checkpoint(project: Project, tmp_path: Path) -> None:
    sft = register(project, POLICY_KIND, fake_model(tmp_path / "sft"))
    assert resolve(project, kind=POLICY_KINDS, explicit=None).record == sft
    rl = register(project, RL_CHECKPOINT_KIND, fake_model(tmp_path / "rl"))
    assert resolve(project, kind=POLICY_KINDS, explicit=None).record == rl
    assert resolve(project, kind=POLICY_KINDS, explicit=sft.id).record == sft
    assert not is_sandbox(project)


def imports_of(package: str) -> set[str]:
    names: set[str] = set()
    for path in (SRC / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
    return names


def test_evals_does_not_import_rl() -> None:
    # RL runs the quick evals; evals reads kinds and models from tether.artifacts, not from rl.
    assert not {m for m in imports_of("evals") if m == "tether.rl" or m.startswith("tether.rl.")}


def test_artifact_kinds_are_spelled_once() -> None:
    kinds = {"policy", "reward_model", "rm_eval", "rl_checkpoint", "export", "eval_run", "redteam_search"}
    kinds |= {"sandbox_world", "sft_corpus", "anchors"}
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "artifacts.py" and path.parent == SRC:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                named = [t.id for t in node.targets if isinstance(t, ast.Name) and t.id.endswith("_KIND")]
                if named and node.value.value in kinds:
                    offenders.append(f"{path.relative_to(SRC)}: {named[0]}")
            is_kind = isinstance(node, ast.keyword) and node.arg == "kind"
            if is_kind and isinstance(node.value, ast.Constant) and node.value.value in kinds:
                offenders.append(f"{path.relative_to(SRC)}: kind={node.value.value!r}")
    assert not offenders, f"spell artifact kinds with tether.artifacts constants: {offenders}"


def test_checkpoint_meta_reads_back(tmp_path: Path) -> None:
    entry = {"path": str(tmp_path), "artifact_id": None, "content_sha256": "ab"}
    assert ModelInput.from_dict(json.loads(json.dumps(entry)), "checkpoint").to_dict() == entry
