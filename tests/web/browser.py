"""Helpers for the browser test: a real Chromium, the app served by uvicorn, and planted tasks.

The browser is Debian's chromium driven by Playwright (Playwright's own browsers are never
downloaded). Where it is missing and the test runs as root, `chromium_path` installs it with
apt-get, within a time limit; otherwise the caller skips with the reason it returns.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from tether.labeling.batches import plan_batch
from tether.labeling.context import project_labeling_context
from tether.project import Project
from tether.sandbox.build import sandbox_prompts, store_prompts
from tether.sandbox.config import SandboxConfig
from tether.scaffold import init_project
from tether.store import NewPrompt, add_prompts
from tether.store.prompts import prompt_ids_by_key
from tether.store.tasks import NewTask, add_responses, add_tasks
from tether.web.app import create_app

from ..labeling.conftest import sft_pairs
from .conftest import WebProject

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_TIMEOUT_S = 300
"""Longest the apt-get update and install of chromium may take together."""


def chromium_path() -> tuple[Path | None, str]:
    """Debian's chromium, installed with apt-get first when missing and running as root.

    Returns (path, "") when it is there, or (None, why not) for the caller's skip message.
    """
    if CHROMIUM.exists():
        return CHROMIUM, ""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, f"{CHROMIUM} is missing; install it with `apt-get install -y chromium` (as root)"
    deadline = time.monotonic() + INSTALL_TIMEOUT_S
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        left = deadline - time.monotonic()
        try:
            subprocess.run(command, env=env, capture_output=True, timeout=max(left, 1), check=True)
        except (subprocess.SubprocessError, OSError) as exc:
            return None, f"`{' '.join(command)}` failed ({type(exc).__name__}); chromium is not available"
    if not CHROMIUM.exists():
        return None, f"apt-get installed chromium but {CHROMIUM} is still missing"
    return CHROMIUM, ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(app: FastAPI, *, start_timeout_s: float = 15.0) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port in a thread; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{base}/login", thread, timeout_s=start_timeout_s)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _wait_until_up(url: str, thread: threading.Thread, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError(f"uvicorn stopped before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"uvicorn did not answer {url} within {timeout_s:.0f} s")


def plant_task(
    project: Project,
    *,
    key: str,
    prompt: str,
    responses: tuple[str, str],
    messages: list[dict[str, str]] | None = None,
) -> int:
    """Add one live comparison (raters_needed=1) with the given texts; returns its task id.
    ``messages``: the whole conversation, whose last user turn is ``prompt``."""
    dimension = project.spec.dimension_ids[0]
    new = NewPrompt(key=key, text=prompt, dimension=dimension, stratum="routine", meta={}, messages=messages)
    with project.store.session() as session:
        add_prompts(session, project_id=project.project_id, prompts=[new], spec_hash=project.spec_hash)
        prompt_id = prompt_ids_by_key(session, project_id=project.project_id, keys=[key])[key]
        a, b = add_responses(
            session,
            project_id=project.project_id,
            items=[(prompt_id, responses[0], "test"), (prompt_id, responses[1], "test")],
            spec_hash=project.spec_hash,
        )
        [task_id] = add_tasks(
            session,
            project_id=project.project_id,
            batch_id=None,
            tasks=[NewTask(prompt_id=prompt_id, response_a_id=a, response_b_id=b, raters_needed=1)],
            spec_hash=project.spec_hash,
        )
    return task_id


def web_project_with_first_task(
    root: Path, *, tasks: int, prompt: str, responses: tuple[str, str]
) -> tuple[WebProject, int]:
    """`make_web_project`, with one planted task ahead of the batch (live work is served by task id)."""
    project = init_project(root / "web", template="sandbox")
    store_prompts(project, sandbox_prompts(SandboxConfig(n_prompts=max(1200, tasks * 8))), 0)
    task_id = plant_task(project, key="planted-first", prompt=prompt, responses=responses)
    plan_batch(project, n=tasks, sampler=sft_pairs, labels=("sft", "sft"), seed=0)
    ctx = project_labeling_context(project)
    return WebProject(project, ctx, create_app(project, ctx)), task_id


def png_size_and_colours(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct byte values of the decompressed image data) of a PNG.

    A one-colour screenshot filters down to a handful of byte values; a rendered page has many.
    """
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    width, height = struct.unpack(">II", data[16:24])
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        if kind == b"IDAT":
            chunks.append(data[at + 8 : at + 8 + length])
        at += 12 + length
    pixels = zlib.decompress(b"".join(chunks))
    return width, height, len(set(pixels))
