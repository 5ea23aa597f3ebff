"""`tether eval`: Run behavioral test suites and compare checkpoints."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run behavioral test suites and compare checkpoints.", no_args_is_help=True)
