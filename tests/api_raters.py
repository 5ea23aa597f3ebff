"""Raters who calibrate and label through the real HTTP API (`/api/v1`), as a client would.

Shared by `tests/test_own_model_e2e.py` and `bench/own_model_label.py`: each rater answers the
calibration anchors (and any hidden anchor) with the expert's label, read from the project's
anchors file, and labels live tasks by a fixed rule, the longer response wins, with a written
rationale, so that the reward model has something to learn.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tether.labeling.context import project_labeling_context
from tether.project import Project
from tether.web.app import create_app

RATIONALE = "The longer answer gives the user more to act on, so it is the better one here."
MAX_ITEMS = 10_000
"""A bound on one rater's fetches, so that a queue that never empties fails instead of hanging."""


def expert_texts(project: Project) -> dict[str, str]:
    """The response the experts prefer, by anchor prompt (the raters' oracle for anchors)."""
    path = project.root / project.spec.labeling.anchors_path
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            anchor = json.loads(line)
            out[anchor["prompt"]] = anchor["response_a" if anchor["label"] == "A" else "response_b"]
    return out


def choose(item: dict[str, Any], experts: dict[str, str]) -> str:
    """The expert's side on an anchor, else the longer response ("A" is the left one as shown)."""
    expert = experts.get(item["prompt"])
    if expert is not None and expert in (item["left"], item["right"]):
        return "A" if item["left"] == expert else "B"
    return "A" if len(item["left"]) >= len(item["right"]) else "B"


def label_all(project: Project, tokens: dict[str, str]) -> dict[str, Counter[str]]:
    """Every rater takes work until their queue is empty; returns the count per purpose and rater."""
    client = TestClient(create_app(project, project_labeling_context(project)))
    experts = expert_texts(project)
    done: dict[str, Counter[str]] = {}
    for name, token in tokens.items():
        done[name] = Counter()
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(MAX_ITEMS):
            fetched = client.get("/api/v1/assignments/next", headers=headers)
            if fetched.status_code == 204:
                break
            if fetched.status_code != 200:
                raise AssertionError(f"{name}: GET /assignments/next {fetched.status_code}: {fetched.text}")
            item = fetched.json()
            # A client reads the conversation; its last message is the prompt's last user turn.
            if item["messages"][-1] != {"role": "user", "content": item["prompt"]}:
                raise AssertionError(f"{name}: messages do not end with the prompt: {item['messages']}")
            body = {
                "assignment_id": item["assignment_id"],
                "choice": choose(item, experts),
                "strength": 2,
                "rationale": RATIONALE,
                "seconds": 12.0,
            }
            key = {"Idempotency-Key": f"{name}-{item['assignment_id']}"}
            posted = client.post("/api/v1/judgments", json=body, headers={**headers, **key})
            if posted.status_code != 201:
                raise AssertionError(f"{name}: POST /judgments {posted.status_code}: {posted.text}")
            done[name][item["purpose"]] += 1
        else:
            raise AssertionError(f"{name}: the queue did not empty after {MAX_ITEMS} items")
    return done


def token_from_output(output: str) -> str:
    """The sign-in token that `tether raters add` prints once."""
    for line in output.splitlines():
        if "token" in line and ":" in line:
            return line.rsplit(":", 1)[1].strip()
    raise AssertionError(f"no token in: {output}")


def read_tokens(path: Path) -> dict[str, str]:
    """`name token` per line (what `bench/own_model_transcript.sh` saves from `raters add`)."""
    pairs = (line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {name: token for name, token in pairs}
