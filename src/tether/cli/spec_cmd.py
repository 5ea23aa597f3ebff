"""`tether spec …`: validate, summarize and hash the behavior spec."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tether.cli.common import ProjectOption, console, err_console, open_project
from tether.errors import TetherInputError
from tether.project import find_project_dir, read_config
from tether.spec import Spec, load_spec, short_hash, spec_hash, spec_warnings
from tether.spec.anchors import anchor_problems, load_anchors
from tether.store import list_spec_versions

app = typer.Typer(help="Validate, summarize and hash the behavior spec.", no_args_is_help=True)

PathArg = Annotated[Path | None, typer.Argument(help="Spec file (default: the project's spec).")]


def _spec_path(path: Path | None, project: Path | None) -> Path:
    if path is not None:
        return path
    root = find_project_dir(project)
    return root / read_config(root / "tether.toml").spec


def _summary(spec: Spec, digest: str) -> Table:
    table = Table(
        title=f"{spec.name} v{spec.version}  [dim]hash {short_hash(digest)}[/]", title_justify="left"
    )
    for column in ("dimension", "critical", "levels", "RM gate"):
        table.add_column(column)
    for dim in spec.dimensions:
        table.add_row(
            dim.id, "yes" if dim.critical else "", str(len(dim.rubric)), f"acc ≥ {dim.gate.min_accuracy:.2f}"
        )
    return table


def _policy_lines(spec: Spec) -> list[str]:
    lab, rm, rl = spec.labeling, spec.reward_model, spec.rl
    return [
        f"priority: {' > '.join(spec.trade_offs.priority) or '(none)'}",
        f"unacceptable failures: {len(spec.unacceptable)}; trade-off rules: {len(spec.trade_offs.rules)}",
        f"labeling: {lab.calibration_size} calibration anchors, exclude above "
        f"{lab.max_expert_disagreement:.0%} expert disagreement, {lab.hard_case_share:.0%} hard cases, "
        f"{lab.overlap_fraction:.0%} overlap x{lab.raters_per_overlap}",
        f"reward model: ≥ {rm.min_pairs:,} pairs, accuracy ≥ {rm.min_accuracy:.2f}, ECE ≤ {rm.max_ece:.2f}",
        f"RL: KL budget {rl.kl_budget_nats:g} nats (sequence-level), {rl.steps_per_run} steps per run",
    ]


def _check_anchors(spec: Spec, spec_file: Path) -> list[str]:
    """Anchor problems; the anchors path is relative to the spec's directory."""
    anchors_file = spec_file.parent / spec.labeling.anchors_path
    if not anchors_file.is_file():
        return [f"labeling.anchors_path: {anchors_file} does not exist yet"]
    anchors = load_anchors(anchors_file, spec=spec)
    console.print(f"anchors: {len(anchors)} in {escape(str(anchors_file))}")
    return anchor_problems(anchors, spec)


@app.command("check")
def check(path: PathArg = None, project: ProjectOption = None) -> None:
    """Validate a spec file and print a readable summary. Exit 2 on any problem."""
    spec_file = _spec_path(path, project)
    spec = load_spec(spec_file)
    digest = spec_hash(spec)
    console.print(_summary(spec, digest))
    for line in _policy_lines(spec):
        console.print(f"  {escape(line)}")
    warnings = spec_warnings(spec) + _check_anchors(spec, spec_file)
    for warning in warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}")
    console.print(f"[green]ok[/] {escape(str(spec_file))} is a valid spec (hash {digest})")


@app.command("hash")
def hash_(path: PathArg = None, project: ProjectOption = None) -> None:
    """Print the spec's content hash (its version id)."""
    console.print(spec_hash(load_spec(_spec_path(path, project))))


@app.command("history")
def history(project: ProjectOption = None) -> None:
    """List the spec versions recorded in the project's store."""
    proj = open_project(project)
    with proj.store.session() as session:
        versions = list_spec_versions(session, project_id=proj.project_id)
    if not versions:
        raise TetherInputError("no spec versions recorded")
    table = Table("hash", "name", "version", "recorded")
    for v in versions:
        current = " (current)" if v.spec_hash == proj.spec_hash else ""
        table.add_row(
            short_hash(v.spec_hash) + current, v.name, v.version, v.created_at.isoformat(timespec="seconds")
        )
    console.print(table)
