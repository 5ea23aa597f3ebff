"""`tether policy …`: register the team's own SFT policy, which every later stage defaults to.

tether policy register /models/my-sft --name my-sft    # validate, hash, register; prints its id
tether policy list
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tether.cli.common import ProjectOption, console, open_project

app = typer.Typer(help="Register and list SFT policies (Hugging Face causal LMs).", no_args_is_help=True)


@app.command("register")
def register(
    path: Annotated[Path, typer.Argument(help="Model directory: safetensors weights, config, tokenizer.")],
    project: ProjectOption = None,
    name: Annotated[str | None, typer.Option(help="A name to list it by (default: the directory).")] = None,
    role: Annotated[
        str, typer.Option(help="sft (the default every stage uses) or baseline (to compare against).")
    ] = "sft",
) -> None:
    """Validate a model directory and register it as a policy; the same content keeps its id."""
    from tether.policies import register_policy

    done = register_policy(open_project(project), path, name=name, role=role)
    record = done.record
    if not done.created:
        console.print(
            f"already registered: policy {record.id} ({escape(record.path)}), "
            f"role {record.meta.get('role', 'sft')}; nothing changed"
        )
        return
    meta = record.meta
    console.print(
        f"[green]registered[/] policy {record.id}: {escape(str(meta.get('name')))}, "
        f"{meta.get('architecture')}, role {meta.get('role')}, sha256 {record.content_hash[:12]}"
    )
    if not meta.get("pad_token"):
        console.print("  the tokenizer has no pad token; the stages pad with its EOS token")
    if not meta.get("chat_template"):
        console.print("  the tokenizer has no chat template; prompts are followed by a blank line")
    if meta.get("role") == "sft":
        console.print("next: tether label plan --n 100 (or tether rm train once labels are exported)")


@app.command("list")
def list_(project: ProjectOption = None) -> None:
    """The registered policies, oldest first (the newest sft one is what stages default to)."""
    from tether.artifacts import is_default_policy
    from tether.policies import list_policies

    records = list_policies(open_project(project))
    if not records:
        console.print("no policies yet; register one with `tether policy register PATH`")
        return
    default = next((r.id for r in reversed(records) if is_default_policy(r)), None)
    table = Table("id", "name", "role", "path", "sha256", "created")
    for r in records:
        mark = " (default)" if r.id == default else ""
        table.add_row(
            r.id + mark,
            escape(str(r.meta.get("name", Path(r.path).name))),
            str(r.meta.get("role", "sft")),
            escape(r.path),
            r.content_hash[:12],
            r.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)
