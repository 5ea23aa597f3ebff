"""Start a Tether command on N CPU ranks the way docs/scaling.md says: accelerate's launcher.

    result = launch(["rm", "train", "--data", ...], processes=2, cwd=project)

Each rank is a real process with the gloo backend; the port is free so tests may run side by side.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch_command(args: Sequence[str], *, processes: int) -> list[str]:
    """The documented launch line for `tether ARGS` on `processes` ranks."""
    launcher = (
        ["--multi_gpu", "--num_processes", str(processes)] if processes > 1 else ["--num_processes", "1"]
    )
    return [
        *ACCELERATE, *launcher, "--main_process_port", str(free_port()), "--mixed_precision", "no",
        "--dynamo_backend", "no", "--num_machines", "1", "-m", "tether", *args,
    ]  # fmt: skip


def launch(
    args: Sequence[str],
    *,
    processes: int,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run `tether ARGS` under accelerate's launcher with one thread per rank; output captured."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    return subprocess.run(
        launch_command(args, processes=processes),
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
