"""`tether redteam`: find outputs the reward model loves but graders reject; route them to labeling."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Search for outputs the reward model loves but graders reject, and route them to labeling.",
    no_args_is_help=True,
)
