"""`tether redteam`: find outputs the reward model loves but graders reject; route them to labeling.

    tether redteam search --policy sft --reward-model models/rm-clean   # sample, edit, rank by gap
    tether redteam submit found.jsonl                                   # red-teamers' findings from a file
    tether redteam list                                                  # findings, largest gap first
    tether redteam route --top 50                                        # -> labeling tasks, origin redteam

Exit codes: 0 done; 2 bad input (an unknown policy or reward model, a submission file with bad lines:
the good lines are still stored).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from tether.cli.common import ProjectOption, console, err_console, open_project
from tether.errors import TetherInputError

if TYPE_CHECKING:
    from tether.store.findings import FindingRecord

app = typer.Typer(
    help="Search for outputs the reward model loves but graders reject, and route them to labeling.",
    no_args_is_help=True,
)

STAGES = {"sampling": "sampling the policy", "scoring": "reward-model scoring", "baseline": "SFT baselines"}


@contextmanager
def search_progress() -> Iterator[Callable[[str, int, int], None]]:
    """One bar per search stage; yields the `progress(stage, done, total)` callback."""
    with Progress(
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(STAGES.get(stage, stage), total=total)
            progress.update(tasks[stage], completed=done, total=total)

        yield report


@app.command("search")
def search(
    project: ProjectOption = None,
    policy: Annotated[
        str,
        typer.Option(help="Policy to red-team: latest (newest RL checkpoint, else SFT), sft, an id or dir."),
    ] = "latest",
    reward_model: Annotated[
        str | None,
        typer.Option("--reward-model", help="Reward model artifact id or directory (default: latest)."),
    ] = None,
    prompts: Annotated[int, typer.Option(min=1, help="Pool prompts to search (a seeded draw).")] = 300,
    samples_per_prompt: Annotated[int, typer.Option(min=1, help="Policy samples per prompt.")] = 8,
    strata: Annotated[
        str, typer.Option(help="Comma-separated strata to draw prompts from.")
    ] = "hard,adversarial,edge",
    probes: Annotated[bool, typer.Option(help="Add the RM probe edits of each sample as candidates.")] = True,
    keep: Annotated[int, typer.Option(min=1, help="Findings to store, largest gap first.")] = 200,
    per_prompt: Annotated[int, typer.Option(min=1, help="At most this many findings per prompt.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the prompt draw and the sampling.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Sample the policy on hard prompts, add probe edits, keep what the RM scores high and graders low."""
    from tether.evals.redteam_search import search as run_search
    from tether.hf import quiet_transformers
    from tether.store.prompts import STRATA

    quiet_transformers()
    chosen = [s.strip() for s in strata.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in STRATA]
    if unknown or not chosen:
        raise TetherInputError(f"--strata: '{strata}' must name some of {', '.join(STRATA)}")
    proj = open_project(project)
    with search_progress() as progress:
        result = run_search(
            proj,
            policy=policy,
            reward_model=reward_model,
            samples_per_prompt=samples_per_prompt,
            prompts=prompts,
            strata=chosen,
            probes=probes,
            seed=seed,
            keep=keep,
            per_prompt=per_prompt,
            progress=progress,
        )
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
        return
    console.print(
        f"searched {result.prompts} prompts: {result.samples} samples, {result.candidates} distinct "
        f"candidates with probe edits ({result.artifact_id})"
    )
    console.print(f"all candidates: mean reward {result.mean_rm:+.3f}, mean grade {result.mean_grade:.3f}")
    if result.findings_mean_rm is not None and result.findings_mean_grade is not None:
        console.print(
            f"{len(result.finding_ids)} findings stored: mean reward {result.findings_mean_rm:+.3f}, "
            f"mean grade {result.findings_mean_grade:.3f}"
        )
    else:
        console.print("no findings: no candidate is scored higher by the reward model than by the graders")


@app.command("submit")
def submit(
    file: Annotated[
        Path, typer.Argument(help="JSONL: prompt, response, optional dimension, note, baseline.")
    ],
    project: ProjectOption = None,
    reward_model: Annotated[
        str | None, typer.Option("--reward-model", help="Reward model that scores them (default: latest).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Store red-teamers' findings from a file; bad lines are reported by number, good ones kept."""
    from tether.evals.redteam_submit import submit as run_submit
    from tether.hf import quiet_transformers

    quiet_transformers()
    result = run_submit(open_project(project), file, reward_model=reward_model)
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
    else:
        scored = (
            f"scored by {result.reward_model}" if result.reward_model else "no reward model to score them"
        )
        unit = f"; gaps in the unit of {result.gap_scale_from}" if result.gap_scale_from else ""
        console.print(f"stored {len(result.finding_ids)} findings from {escape(str(file))} ({scored}{unit})")
    for error in result.errors:
        err_console.print(f"[red]{escape(str(file))}:{error.line}:[/] {escape(error.message)}")
    if result.errors:
        raise TetherInputError(f"{len(result.errors)} line(s) of {file} rejected; the good lines were stored")


def _score(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def findings_table(findings: list[FindingRecord]) -> Table:
    table = Table(title="red-team findings, largest gap first")
    for name in ("id", "gap", "RM", "grader", "source", "status", "dimension", "prompt", "response"):
        table.add_column(name, justify="right" if name in ("id", "gap", "RM", "grader") else "left")
    for f in findings:
        table.add_row(
            str(f.id),
            _score(f.gap, "+.2f"),
            _score(f.rm_score, "+.3f"),
            _score(f.grader_score, ".2f"),
            f.source,
            f.status,
            f.dimension or "-",
            escape(_short(f.prompt, 40)),
            escape(_short(f.response)),
        )
    return table


@app.command("list")
def list_(
    project: ProjectOption = None,
    status: Annotated[
        str | None, typer.Option(help="Only findings in this status (open, routed, dismissed).")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Only findings from this source (search, web, file).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Findings ranked by gap, with their reward-model score, grader score and source."""
    from tether.store.findings import FINDING_SOURCES, FINDING_STATUSES, list_findings

    if status is not None and status not in FINDING_STATUSES:
        raise TetherInputError(f"--status: '{status}' is not one of {', '.join(FINDING_STATUSES)}")
    if source is not None and source not in FINDING_SOURCES:
        raise TetherInputError(f"--source: '{source}' is not one of {', '.join(FINDING_SOURCES)}")
    proj = open_project(project)
    with proj.store.session() as session:
        findings = list_findings(
            session, project_id=proj.project_id, status=status, source=source, limit=limit
        )
    if as_json:
        keys = (
            "id",
            "gap",
            "rm_score",
            "grader_score",
            "source",
            "status",
            "dimension",
            "prompt",
            "response",
        )
        rows = [
            {k: getattr(f, k) for k in keys}
            | {"baseline_response": f.baseline_response, "task_id": f.task_id}
            for f in findings
        ]
        console.print_json(json.dumps(rows))
        return
    if not findings:
        console.print("no findings yet: run `tether redteam search`, or submit some")
        return
    console.print(findings_table(findings))


@app.command("route")
def route(
    project: ProjectOption = None,
    top: Annotated[int, typer.Option(min=1, help="Route the N open findings with the largest gaps.")] = 50,
    min_gap: Annotated[
        float | None, typer.Option("--min-gap", help="Only findings with at least this gap.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of SFT baseline samples for findings without one.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Turn the top open findings into hard-case comparison tasks (finding vs baseline), origin redteam."""
    from tether.evals.redteam_route import route as run_route
    from tether.hf import quiet_transformers

    quiet_transformers()
    result = run_route(open_project(project), top=top, min_gap=min_gap, seed=seed)
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
        return
    if result.batch_id is None:
        console.print(
            "no open findings to route" + (" (all chosen ones were skipped)" if result.skipped else "")
        )
    else:
        console.print(
            f"batch {result.batch_id}: {len(result.task_ids)} tasks with origin redteam "
            f"(x{result.raters_per_task} raters each) from findings "
            f"{', '.join(map(str, result.finding_ids[:10]))}{' …' if len(result.finding_ids) > 10 else ''}"
        )
    for finding_id, why in result.skipped:
        console.print(f"  skipped finding {finding_id}: {escape(why)}")
