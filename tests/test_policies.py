"""`tether policy register`: a team's own Llama, validated, hashed and registered once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.tiny_llama import save_tiny_llama
from tether.artifacts import POLICY_KIND, RL_CHECKPOINT_KIND, resolve
from tether.cli.main import app
from tether.feedback.lineage import artifact_lineage
from tether.hashing import content_sha256
from tether.policies import list_policies, register_policy
from tether.project import Project
from tether.scaffold import init_project
from tether.store import register_artifact

runner = CliRunner()


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return init_project(tmp_path / "p", template="assistant")


def cli(project: Project, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--project", str(project.root)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def variant(llama: Path, tmp_path: Path, name: str) -> Path:
    out = tmp_path / name
    shutil.copytree(llama, out)
    return out


def test_register_is_idempotent_and_becomes_the_default(project: Project, llama: Path) -> None:
    code, out = cli(project, "policy", "register", str(llama), "--name", "mine")
    assert code == 0 and "registered policy policy-" in out and "LlamaForCausalLM" in out, out
    record = list_policies(project)[0]
    assert record.content_hash == content_sha256(llama)
    assert record.meta | {"name": "mine", "role": "sft", "architecture": "LlamaForCausalLM"} == record.meta
    code, out = cli(project, "policy", "register", str(llama))
    assert code == 0 and f"already registered: policy {record.id}" in out
    assert [r.id for r in list_policies(project)] == [record.id]
    assert resolve(project, kind=POLICY_KIND, explicit=None).record == record
    code, out = cli(project, "policy", "list")
    assert code == 0 and f"{record.id} (default)" in out and "mine" in out and record.content_hash[:12] in out


def test_the_same_content_elsewhere_keeps_its_id(project: Project, llama: Path, tmp_path: Path) -> None:
    first = register_policy(project, llama)
    again = register_policy(project, variant(llama, tmp_path, "copy"), name="other")
    assert (again.record.id, again.created) == (first.record.id, False)


def test_a_baseline_does_not_replace_the_sft_default(project: Project, llama: Path, tmp_path: Path) -> None:
    sft = register_policy(project, llama).record
    other = variant(llama, tmp_path, "other")
    (other / "generation_config.json").write_text("{}", encoding="utf-8")  # other content, other id
    code, out = cli(project, "policy", "register", str(other), "--role", "baseline")
    assert code == 0, out
    assert resolve(project, kind=POLICY_KIND, explicit=None).record == sft
    code, out = cli(project, "policy", "register", str(other), "--role", "critic")
    assert code == 2 and "unknown role 'critic'" in out


def not_a_causal_lm(llama: Path, tmp_path: Path) -> Path:
    out = variant(llama, tmp_path, "classifier")
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    config["architectures"] = ["LlamaForSequenceClassification"]
    (out / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return out


def pickled(llama: Path, tmp_path: Path) -> Path:
    out = variant(llama, tmp_path, "pickled")
    (out / "model.safetensors").unlink()
    (out / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    return out


def no_tokenizer(llama: Path, tmp_path: Path) -> Path:
    out = variant(llama, tmp_path, "bare")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        (out / name).unlink(missing_ok=True)
    return out


def a_file(llama: Path, tmp_path: Path) -> Path:
    return llama / "config.json"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda llama, tmp: tmp / "missing", "no such directory"),
        (a_file, "is a file; pass the model's directory"),
        (pickled, "found pytorch_model.bin); Tether never unpickles"),
        (not_a_causal_lm, "LlamaForSequenceClassification is not a causal language model"),
        (no_tokenizer, "no tokenizer loads from it"),
    ],
    ids=["missing", "file", "pickled", "classifier", "no-tokenizer"],
)
def test_bad_directories_exit_2_and_register_nothing(
    project: Project,
    llama: Path,
    tmp_path: Path,
    make,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    code, out = cli(project, "policy", "register", str(make(llama, tmp_path)))
    assert code == 2 and message in " ".join(out.split()), out
    assert list_policies(project) == []


def test_init_registers_the_policy_or_creates_nothing(llama: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "ok"), "--policy", str(llama)])
    assert result.exit_code == 0 and "SFT policy: policy-" in result.output, result.output
    assert [r.path for r in list_policies(Project.open(tmp_path / "ok"))] == [str(llama.resolve())]
    result = runner.invoke(app, ["init", str(tmp_path / "bad"), "--policy", str(pickled(llama, tmp_path))])
    assert result.exit_code == 2 and "never unpickles" in result.output
    assert not (tmp_path / "bad").exists()


def test_lineage_reaches_the_sft_policy(project: Project, llama: Path, tmp_path: Path) -> None:
    # A run started from the directory before it was registered: only tether_rl.json names it.
    checkpoint = tmp_path / "rl" / "step-000002"
    checkpoint.mkdir(parents=True)
    sft = {"path": str(llama), "artifact_id": None, "content_sha256": content_sha256(llama)}
    (checkpoint / "tether_rl.json").write_text(json.dumps({"sft": sft}), encoding="utf-8")
    project_id = project.project_id
    with project.store.session() as session:
        rl = register_artifact(
            session,
            project_id=project_id,
            kind=RL_CHECKPOINT_KIND,
            path=project.relative(checkpoint),
            content_hash=content_sha256(checkpoint),
            spec_hash=project.spec_hash,
            meta={"algo": "rloo", "step": 2},
        )
    assert artifact_lineage(project, rl.id).children == []
    policy = register_policy(project, llama, name="mine").record
    tree = artifact_lineage(project, rl.id)
    assert [(c.id, c.kind) for c in tree.children] == [(policy.id, POLICY_KIND)]
    details = tree.children[0].details
    assert details["name"] == "mine" and details["content_sha256"] == policy.content_hash
    code, out = cli(project, "lineage", rl.id)
    assert code == 0 and f"policy {policy.id}" in out and "architecture=LlamaForCausalLM" in out
