"""`tether label serve --workers 2`: several processes on one store, each judgment stored once.

The worker processes share a SQLite file, so their transactions take turns through the file lock
in `SqliteTurns`; the raters below hit both workers at once (uvicorn spreads connections)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tether.labeling.raters import hash_token
from tether.store.judgments import rater_judgments
from tether.store.raters import find_rater_by_token

from .conftest import WebProject, bearer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def judge_loop(base: str, token: str, rounds: int) -> list[int]:
    """Fetch and submit `rounds` times on fresh connections; returns acknowledged judgment ids."""
    acked = []
    for i in range(rounds):
        with httpx.Client(base_url=base, headers=bearer(token), timeout=20) as client:
            item = client.get("/api/v1/assignments/next")
            assert item.status_code == 200, item.text
            body = {
                "assignment_id": item.json()["assignment_id"],
                "choice": "AB"[i % 2],
                "strength": 2,
                "rationale": "The first one states the fact and stops; the other wanders off.",
            }
            key = {"Idempotency-Key": f"{token[:6]}-{i}"}
            done = client.post("/api/v1/judgments", json=body, headers=key)
            assert done.status_code == 201, done.text
            again = client.post("/api/v1/judgments", json=body, headers=key)
            assert again.status_code == 200 and again.json()["judgment_id"] == done.json()["judgment_id"]
            acked.append(int(done.json()["judgment_id"]))
    return acked


@pytest.mark.skipif(sys.platform == "win32", reason="the file lock between workers is POSIX flock")
def test_two_workers_store_every_acknowledged_judgment_once(web_sqlite: WebProject) -> None:
    tokens = [web_sqlite.add(f"w{i}", active=True) for i in range(4)]
    port = free_port()
    tether = str(Path(sys.executable).parent / "tether")
    args = [tether, "label", "serve", "--project", str(web_sqlite.project.root), "--port", str(port)]
    server = subprocess.Popen(
        [*args, "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ)
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
            try:
                if httpx.get(f"{base}/api/v1/me", headers=bearer(tokens[0])).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
        with ThreadPoolExecutor(len(tokens)) as pool:
            acked = [ids for ids in pool.map(lambda t: judge_loop(base, t, 6), tokens)]
    finally:
        server.terminate()
        server.wait(timeout=20)
    with web_sqlite.project.store.session() as session:
        for token, ids in zip(tokens, acked, strict=True):
            rater = find_rater_by_token(session, token_hash=hash_token(token))
            assert rater is not None
            stored = [j.id for j in rater_judgments(session, rater_id=rater.id)]
            assert sorted(stored) == sorted(ids)
    assert (web_sqlite.project.path("web", "sqlite.turns")).exists()
