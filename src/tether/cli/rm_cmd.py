"""`tether rm …`: train, evaluate, probe and gate reward models."""

from __future__ import annotations

import typer

from tether.cli import rm_eval_cmd, rm_train_cmd

app = typer.Typer(help="Train, evaluate, probe and gate reward models.", no_args_is_help=True)
app.command("train")(rm_train_cmd.train)
app.command("eval")(rm_eval_cmd.evaluate)
app.command("probe")(rm_eval_cmd.probe)
