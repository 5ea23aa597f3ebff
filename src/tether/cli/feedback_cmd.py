"""`tether feedback`: Ingest production feedback, route it to review, and check drift."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Ingest production feedback, route it to review, and check drift.", no_args_is_help=True
)
