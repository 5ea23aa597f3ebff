"""`tether data export`: the preference dataset for reward-model training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tether.cli.common import ProjectOption, console, open_project
from tether.errors import TetherInputError

app = typer.Typer(help="Export preference datasets.", no_args_is_help=True)


@app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", help="Directory to write (must be new or empty).")],
    project: ProjectOption = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="jsonl, hf (datasets.save_to_disk) or trl-conversational (message lists); default: "
            "trl-conversational when any prompt is a conversation or the spec sets a system prompt, "
            "else jsonl.",
        ),
    ] = None,
    include_excluded: Annotated[
        bool,
        typer.Option(
            "--include-excluded",
            help="Keep excluded and not-yet-active raters' labels, and labels held by failed hidden anchors.",
        ),
    ] = False,
    keep_ties: Annotated[
        bool, typer.Option("--keep-ties", help="Keep tasks whose majority is a tie.")
    ] = False,
    heldout: Annotated[
        float, typer.Option(help="Held-out share, stratified by dimension and stratum.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the held-out split.")] = 0,
) -> None:
    """Majority-aggregate judgments into TRL's prompt/chosen/rejected format with a held-out split."""
    from tether.labeling.dataset import export_preferences

    if fmt not in (None, "jsonl", "hf", "trl-conversational"):
        raise TetherInputError(f"--format must be jsonl, hf or trl-conversational, got '{fmt}'")
    if not 0 <= heldout < 1:
        raise TetherInputError(f"--heldout must be in [0, 1), got {heldout}")
    result = export_preferences(
        open_project(project),
        out=out,
        fmt=fmt,  # type: ignore[arg-type]  # one of the literals, checked above
        include_excluded=include_excluded,
        keep_ties=keep_ties,
        heldout=heldout,
        seed=seed,
    )
    s = result.stats
    console.print(
        f"export {result.artifact.id}: {result.train} train / {result.test} held-out pairs "
        f"in {escape(str(out))}"
    )
    console.print(
        f"  {s.tasks} labelled tasks: {s.kept} kept, {s.dropped_ties} ties and "
        f"{s.dropped_no_majority} without a majority dropped"
    )
    console.print(f"  raters: {', '.join(result.raters)}")
    if result.left_out:
        console.print(f"  left out (not active): {', '.join(result.left_out)}")
    if result.held:
        held = ", ".join(f"{escape(name)} {n}" for name, n in result.held.items())
        console.print(f"  held out until their raters pass recalibration (failed hidden anchors): {held}")


@app.command("import-prompts")
def import_prompts(
    file: Annotated[
        Path, typer.Argument(help="JSONL: text (or messages), dimension, stratum[, key, split, meta].")
    ],
    project: ProjectOption = None,
) -> None:
    """Add tagged prompts to the labeling pool (or the held-out eval split)."""
    from tether.labeling.prompts import import_prompts as run_import

    added, present = run_import(open_project(project), file)
    console.print(f"imported {added} prompts ({present} already present) from {escape(str(file))}")


@app.command("import-preferences")
def import_preferences(
    file: Annotated[
        Path, typer.Argument(help="JSONL, JSON, Parquet, or a directory saved with datasets' save_to_disk.")
    ],
    source: Annotated[
        str, typer.Option("--source", help="Name of this source (it is screened like a rater).")
    ],
    fmt: Annotated[str, typer.Option("--format", help="hh-rlhf, trl, ultrafeedback or auto.")] = "auto",
    dimension: Annotated[
        str | None, typer.Option(help="The spec dimension the labels judge (default: the spec's first).")
    ] = None,
    split: Annotated[str, typer.Option(help="pool, or eval: where new prompts go.")] = "pool",
    keep_ties: Annotated[bool, typer.Option("--keep-ties", help="Keep equal-score rows as ties.")] = False,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid", help="Import the valid rows; write the rejected ones beside the file."
        ),
    ] = False,
    trust: Annotated[
        bool, typer.Option("--trust", help="Let this source train reward models before an audit.")
    ] = False,
    project: ProjectOption = None,
) -> None:
    """Import existing preference pairs (HH-RLHF, TRL, UltraFeedback) as a source screened like a rater."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from tether.labeling.import_preferences import import_preferences as run_import

    opened = open_project(project)
    if dimension is None:
        console.print(
            f"labels judge '{opened.spec.dimension_ids[0]}', the spec's first dimension (--dimension)"
        )
    columns = (SpinnerColumn(), TextColumn("reading {task.completed:,} rows"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("read", total=None)
        result = run_import(
            opened,
            file,
            source=source,
            fmt=fmt,
            dimension=dimension,
            split=split,
            keep_ties=keep_ties,
            skip_invalid=skip_invalid,
            trust=trust,
            progress=lambda done: bar.update(task, completed=done),
        )
    console.print(
        f"imported {result.imported} {result.format} pairs from {escape(str(file))} as source "
        f"'{escape(result.source)}' ({result.already} already imported, {result.ties_dropped} ties dropped)"
    )
    console.print(
        f"  prompts: {result.prompts_added} new, {result.prompts_linked} linked to existing prompts"
    )
    if result.rejected_file is not None:
        console.print(
            f"  {result.rejected} invalid rows skipped; reasons in {escape(str(result.rejected_file))}"
        )
    if result.status == "active":
        console.print("  this source trains reward models (trusted)")
    else:
        console.print(
            f"  not yet used to train reward models: audit it first (`tether label plan --audit "
            f"{escape(result.source)} --n 200`), or import with --trust"
        )
