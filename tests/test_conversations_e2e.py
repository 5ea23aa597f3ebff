"""Conversations and a team's existing preference data end to end, with the real CLI, on a random-init
Llama with a byte-level BPE tokenizer and a ChatML template (`tests.tiny_llama`).

Conversation prompts (1-3 user turns, some with a system message), an HH-RLHF file and a TRL
conversational file are imported; raters label over `/api/v1` with a client that reads `messages`;
the HH source is audited and accepted; the export is TRL's conversational format, which `datasets`
loads and TRL's `RewardTrainer` trains a step on; then Tether's reward model, its gate, RLOO on
conversation prompts, an eval suite of conversation cases, and the report. The token ids are checked
against `apply_chat_template` on both sides: what the reward model scores and what the policy reads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.api_raters import label_all, token_from_output
from tests.test_own_model_e2e import DIMENSIONS, EVAL_SMALL, PER_STRATUM, RATERS, RL_SMALL, TOPICS, tether
from tests.tiny_llama import save_tiny_llama
from tether.conversation import as_dicts, conversation
from tether.generation import fitted_prompts
from tether.hf import ScoredLayout
from tether.project import Project
from tether.reward.scoring import load_reward_model

N_TASKS = 60
N_IMPORTED = 40


def conversation_for(dim: str, stratum: str, i: int) -> list[dict[str, str]]:
    """1-3 user turns, every third with a system message; short (the model's context is 256)."""
    topic = TOPICS[i % len(TOPICS)]
    turns: list[dict[str, str]] = [{"role": "system", "content": "Be brief."}] if i % 3 == 0 else []
    for t in range(i % 3):
        turns += [
            {"role": "user", "content": f"About {topic}, part {t}?"},
            {"role": "assistant", "content": "Sure."},
        ]
    return [*turns, {"role": "user", "content": f"[{dim}/{stratum}] And {topic}, case {i}?"}]


def write_prompts(path: Path) -> Path:
    lines = [
        json.dumps({"messages": conversation_for(dim, stratum, i), "dimension": dim, "stratum": stratum})
        for dim in DIMENSIONS
        for stratum, count in PER_STRATUM.items()
        for i in range(count)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_hh(path: Path) -> Path:
    """HH-RLHF transcripts whose chosen reply is the longer one (what the test's raters prefer)."""
    rows = []
    for i in range(N_IMPORTED):
        topic = TOPICS[i % len(TOPICS)]
        head = f"\n\nHuman: Tell me about {topic} {i}.\n\nAssistant: Which part?\n\nHuman: All of it."
        rows.append({"chosen": f"{head}\n\nAssistant: Here is a full overview of it, {i}.",
                     "rejected": f"{head}\n\nAssistant: No."})  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_trl(path: Path) -> Path:
    rows = [
        {
            "prompt": [{"role": "user", "content": f"How do I keep {TOPICS[i % len(TOPICS)]} tidy, {i}?"}],
            "chosen": [{"role": "assistant", "content": f"Sort them weekly and label each shelf, {i}."}],
            "rejected": [{"role": "assistant", "content": "Dunno."}],
        }
        for i in range(N_IMPORTED)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def set_up(tmp_path: Path, llama: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    root = tmp_path / "chat-assistant"
    tether("init", str(root), "--template", "assistant", "--policy", str(llama))
    with (root / "spec.yaml").open("a", encoding="utf-8") as spec:
        spec.write("\ngeneration:\n  max_new_tokens: 12\n")
    suite_file = root / "suites" / "helpfulness.yaml"
    suite = yaml.safe_load(suite_file.read_text(encoding="utf-8"))
    suite["cases"] += [
        {"id": "conv-1", "messages": conversation_for("helpfulness", "routine", 2), "must_not_refuse": True},
        {"id": "conv-2", "messages": conversation_for("helpfulness", "routine", 3), "must_not_refuse": True},
    ]
    suite_file.write_text(yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    monkeypatch.chdir(root)
    out = tether("data", "import-prompts", str(write_prompts(tmp_path / "prompts.jsonl")))
    assert "imported 125 prompts" in out, out
    out = tether("data", "import-preferences", str(write_hh(tmp_path / "hh.jsonl")), "--source", "hh")
    assert f"imported {N_IMPORTED} hh-rlhf pairs" in out and "audit it first" in out, out
    args = ("--source", "team", "--format", "trl", "--dimension", "helpfulness", "--trust")
    out = tether("data", "import-preferences", str(write_trl(tmp_path / "trl.jsonl")), *args)
    assert f"imported {N_IMPORTED} trl pairs" in out and "trusted" in out, out
    out = tether("label", "plan", "--n", str(N_TASKS), "--max-new-tokens", "12")
    assert f"{N_TASKS} tasks" in out, out
    return Project.open(root)


def label_and_audit(project: Project) -> None:
    tokens = {name: token_from_output(tether("raters", "add", name)) for name in RATERS}
    label_all(project, tokens)  # asserts that every item's messages end with its prompt
    out = tether("label", "plan", "--audit", "hh", "--n", str(N_IMPORTED))
    assert f"{N_IMPORTED} pairs" in out, out
    done = label_all(project, tokens)
    assert sum(c["task"] for c in done.values()) >= N_IMPORTED, done  # and a few hidden anchors
    out = tether("label", "audit", "hh")
    assert "accepted" in out and "status active" in out, out


def trl_reward_step(export: Path, llama: Path, tmp_path: Path) -> None:
    """The export as it is: `datasets` loads it, TRL's RewardTrainer takes one step on it."""
    import datasets
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    files = {name: str(export / f"{name}.jsonl") for name in ("train", "test")}
    loaded = datasets.load_dataset("json", data_files=files, cache_dir=str(tmp_path / "hf-cache"))
    first = loaded["train"][0]
    assert isinstance(first["prompt"], list) and first["chosen"][0]["role"] == "assistant"
    tokenizer = AutoTokenizer.from_pretrained(llama)
    model = AutoModelForSequenceClassification.from_pretrained(llama, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    config = RewardConfig(
        output_dir=str(tmp_path / "trl"), max_steps=1, per_device_train_batch_size=2, report_to=[],
        use_cpu=True, save_strategy="no", logging_steps=1, max_length=256,
    )  # fmt: skip
    trainer = RewardTrainer(
        model=model, args=config, train_dataset=loaded["train"], processing_class=tokenizer
    )
    assert trainer.train().global_step == 1


def check_token_ids(project: Project, llama: Path, model_dir: Path) -> None:
    """What the reward model scores and what the policy reads, against apply_chat_template."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(llama)
    conv = conversation(conversation_for("helpfulness", "routine", 5))
    reply = "Here is a full overview."
    expected = list(tok.apply_chat_template([*as_dicts(conv), {"role": "assistant", "content": reply}],
                                            tokenize=True)["input_ids"])  # fmt: skip
    rm = load_reward_model(model_dir, device="cpu")
    assert rm.encode([conv], [reply]) == [expected]
    assert ScoredLayout(rm.tokenizer, rm.system_prompt, rm.closing).ids([conv], [reply]) == [expected]
    _, ids = fitted_prompts(tok, [conv], budget=200, system=project.spec.generation.system_prompt)
    assert ids == [
        list(tok.apply_chat_template(as_dicts(conv), add_generation_prompt=True, tokenize=True)["input_ids"])
    ]


@pytest.mark.slow
def test_conversations_and_imported_preferences_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("TETHER_DB_URL", raising=False)
    llama = save_tiny_llama(tmp_path / "models" / "tiny-llama")
    project = set_up(tmp_path, llama, monkeypatch)
    label_and_audit(project)
    out = tether("data", "export", "--out", "data/v1")
    manifest: dict[str, Any] = json.loads(Path("data/v1/manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "trl-conversational", out
    assert manifest["origins"]["import:hh"] == N_IMPORTED and manifest["sources"]["team"] == N_IMPORTED
    trl_reward_step(Path("data/v1"), llama, tmp_path)
    small = ("--epochs", "1", "--batch-size", "16", "--max-length", "256")
    out = tether("rm", "train", "--data", "data/v1", *small, "--out", "models/rm")
    assert "trained on:" in out and "hh 40 pairs" in out and "team 40 pairs" in out, out
    check_token_ids(project, llama, Path("models/rm"))
    gate = tether(
        "rm", "eval", "models/rm", "--gate", "--probe-limit", "20", "--batch-size", "16", codes=(0, 3)
    )
    assert "gate" in gate.lower()
    out = tether("rl", "run", "--force", "--reward-model", "models/rm", "--algo", "rloo", *RL_SMALL)
    found = re.search(r"checkpoint (rl_checkpoint-[0-9a-f]+)", out)
    assert "completed after 2 steps" in out and found, out
    out = tether("eval", "run", *EVAL_SMALL)
    results = next(Path(".tether").rglob("results.jsonl"), None)
    assert results is not None and "conv-1" in results.read_text(encoding="utf-8"), out
    loop = ("loop", "--iterations", "1", "--pairs", "20", "--redteam-prompts", "0", "--rm-epochs", "1")
    assert "waiting:" in tether(*loop, "--rl-steps", "2")  # people label the loop's batch
    tether("report", "--out", "report.html")
    assert "tiny-llama" in Path("report.html").read_text(encoding="utf-8")
