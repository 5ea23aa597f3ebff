"""`tether rm …`: train, evaluate, probe and gate reward models."""

from __future__ import annotations

import typer

app = typer.Typer(help="Train, evaluate, probe and gate reward models.", no_args_is_help=True)

# TEMPORARY while rm_train_cmd / rm_eval_cmd are being written (lead removes the guards).
try:
    from tether.cli import rm_train_cmd

    app.command("train")(rm_train_cmd.train)
except ImportError:
    pass
try:
    from tether.cli import rm_eval_cmd

    app.command("eval")(rm_eval_cmd.evaluate)
    app.command("probe")(rm_eval_cmd.probe)
except ImportError:
    pass
