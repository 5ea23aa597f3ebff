"""`tether feedback keys|review|status`: keys shown once, review counts, status as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tether.cli.main import app
from tether.project import Project
from tether.store.api_keys import hash_api_key, list_api_keys

from .conftest import stream, write_jsonl


def run(project: Project, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["feedback", *args, "--project", str(project.root)])
    return result.exit_code, result.output


def test_a_key_is_shown_once_and_stored_only_as_its_hash(sqlite_project: Project) -> None:
    code, output = run(sqlite_project, "keys", "create", "gateway")
    assert code == 0
    key = next(word for word in output.split() if word.startswith("tfk_"))
    with sqlite_project.store.session() as session:
        (stored,) = list_api_keys(session, project_id=sqlite_project.project_id)
    assert stored.key_hash == hash_api_key(key) and key not in stored.key_hash
    assert run(sqlite_project, "keys", "create", "gateway")[0] == 2  # a live name is taken
    code, listed = run(sqlite_project, "keys", "list")
    assert code == 0 and "gateway" in listed and "live" in listed and key not in listed
    assert run(sqlite_project, "keys", "revoke", "gateway")[0] == 0
    assert "revoked" in run(sqlite_project, "keys", "list")[1]
    assert run(sqlite_project, "keys", "revoke", "gateway")[0] == 2


def test_review_and_status(sqlite_project: Project, tmp_path: Path) -> None:
    assert run(sqlite_project, "ingest", str(write_jsonl(tmp_path / "f.jsonl", stream(50))))[0] == 0
    code, output = run(sqlite_project, "review")
    assert code == 0 and "50 new items" in output
    code, output = run(sqlite_project, "status", "--json")
    data = json.loads(output)
    assert code == 0 and data["counts"]["review"] + data["counts"]["skipped"] == 50
    assert data["live_keys"] == [] and data["raters_due"] == []


def test_drift_names_a_bad_reward_model_and_status_shows_the_last_check(sqlite_project: Project) -> None:
    code, output = run(sqlite_project, "drift", "--reward-model", "reward_model-nope")
    assert code == 2 and "not in the registry" in output
    code, output = run(sqlite_project, "drift")
    assert code == 0 and "not enough prompts" in output
    data = json.loads(run(sqlite_project, "status", "--json")[1])
    assert data["last_check"]["drift"] == "unmeasured" and data["last_check"]["run_id"].startswith("drift-")


def test_loop_refuses_an_unknown_tracker_before_any_step(sqlite_project: Project) -> None:
    from tether.store.iterations import list_iterations

    result = CliRunner().invoke(
        app, ["loop", "--log-to", "tensorbored", "--project", str(sqlite_project.root)]
    )
    code, output = result.exit_code, result.output
    assert code == 2 and "unknown tracker(s) tensorbored" in output
    with sqlite_project.store.session() as session:
        assert list_iterations(session, project_id=sqlite_project.project_id) == []
