"""`tether eval`: Run behavioral test suites and compare checkpoints.

    tether eval init-suites                       # sandbox: suites from the held-out eval prompts
    tether eval lint                              # check the suites against the spec
    tether eval run --checkpoint sft              # the SFT baseline
    tether eval run                               # the latest RL checkpoint
    tether eval compare                           # SFT run vs latest RL run; exit 3 on a critical regression
    tether eval collect eval_run-3f2a…            # fill in human rubric grades
    tether eval list

Exit codes: 0 fine (lint warnings included); 2 bad input (unknown dimension or grader, invalid
regex); 1 a grader that cannot go on (an unreachable judge endpoint; the partial results are
saved first); 3 a critical dimension regressed in `compare`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tether.cli.common import ProjectOption, console, err_console, open_project
from tether.errors import QualityGateFailed, TetherInputError

if TYPE_CHECKING:
    from tether.evals.compare import Comparison
    from tether.evals.run import EvalRun

app = typer.Typer(help="Run behavioral test suites and compare checkpoints.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@app.command("lint")
def lint(project: ProjectOption = None) -> None:
    """Check every suite against the spec: errors exit 2, warnings are printed."""
    from tether.evals.lint import lint_suites
    from tether.evals.plan import suites_dir

    proj = open_project(project)
    report = lint_suites(proj.spec, suites_dir(proj))
    for issue in report.warnings:
        console.print(f"[yellow]warning[/] {escape(str(issue))}")
    for issue in report.errors:
        err_console.print(f"[bold red]error[/] {escape(str(issue))}")
    cases = sum(len(s.suite.cases) for s in report.suites)
    console.print(
        f"{len(report.suites)} suites, {cases} cases: "
        f"{len(report.errors)} errors, {len(report.warnings)} warnings"
    )
    if report.errors:
        raise TetherInputError(f"{len(report.errors)} suite errors (listed above)")


@app.command("init-suites")
def init_suites(
    project: ProjectOption = None,
    per_dimension: Annotated[int, typer.Option(min=1, help="Cases per dimension.")] = 100,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing suite files.")] = False,
) -> None:
    """Write the sandbox's suites from its held-out eval-split prompts (one file per dimension)."""
    from tether.evals.init_suites import init_sandbox_suites

    proj = open_project(project)
    for path in init_sandbox_suites(proj, per_dimension=per_dimension, force=force):
        console.print(f"wrote {escape(str(path))}")


@app.command("run")
def run(
    project: ProjectOption = None,
    checkpoint: Annotated[
        str,
        typer.Option(help="sft, latest (the latest RL checkpoint, else SFT), an artifact id or a model dir."),
    ] = "latest",
    suite: Annotated[
        list[str] | None, typer.Option("--suite", help="Only this suite (file stem); repeatable.")
    ] = None,
    grader: Annotated[
        list[str] | None,
        typer.Option(
            "--grader", help="Grade with this grader instead of the suites' own (NAME[:k=v,...]); repeatable."
        ),
    ] = None,
    samples: Annotated[
        int | None, typer.Option(min=1, help="Samples per case (default: the spec's).")
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Only the first quick_cases_per_dimension cases.")
    ] = False,
    max_new_tokens: Annotated[
        int | None, typer.Option(min=1, help="Longest response in tokens (default: the spec's generation).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Sample k uses seed + k.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Sample a policy on every suite case and grade the samples (never with the reward model)."""
    from tether.evals.run import run_eval
    from tether.evals.sampling import SamplingConfig

    proj = open_project(project)
    with _progress() as progress:
        tasks: dict[str, Any] = {}

        def on_progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total)
            progress.update(tasks[phase], completed=done, total=total)

        result = run_eval(
            proj,
            checkpoint=checkpoint,
            suites=suite or (),
            graders=grader or (),
            samples=samples,
            quick=quick,
            progress=on_progress,
            sampling=SamplingConfig.from_generation(
                proj.spec.generation, max_new_tokens=max_new_tokens, seed=seed
            ),
        )
    if as_json:
        console.print_json(json.dumps(_run_json(result)))
        return
    console.print(
        f"eval run {result.artifact_id} of {escape(result.checkpoint)} -> {escape(str(result.run_dir))}"
    )
    _print_summary(result)


@app.command("collect")
def collect(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="eval_run artifact id, run id or directory.")],
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fill in the human rubric grades submitted so far and rewrite the run's results."""
    from tether.evals.history import collect_run

    collected = collect_run(open_project(project), run_ref)
    if as_json:
        payload = _run_json(collected.run) | {
            "filled": collected.filled,
            "still_pending": collected.still_pending,
        }
        console.print_json(json.dumps(payload))
        return
    console.print(
        f"{collected.filled} samples graded since the last collection, "
        f"{collected.still_pending} still pending; "
        f"run {collected.run.artifact_id}"
    )
    _print_summary(collected.run)


@app.command("list")
def list_runs(project: ProjectOption = None, as_json: JsonOption = False) -> None:
    """Eval runs: checkpoint, time and per-dimension scores."""
    from tether.evals.history import list_eval_runs

    proj = open_project(project)
    records = list_eval_runs(proj)
    if as_json:
        console.print_json(
            json.dumps([{"id": r.id, "created_at": r.created_at.isoformat(), **r.meta} for r in records])
        )
        return
    dims = proj.spec.dimension_ids
    table = Table("eval run", "checkpoint", "kind", "time", "quick", *dims, "pending")
    for r in records:
        scores = r.meta.get("scores", {})
        table.add_row(
            r.id, escape(str(r.meta.get("checkpoint"))), str(r.meta.get("checkpoint_kind")),
            f"{r.created_at:%Y-%m-%d %H:%M}", "yes" if r.meta.get("quick") else "",
            *(_fmt(scores.get(d)) for d in dims), str(r.meta.get("pending", 0)),
        )  # fmt: skip
    console.print(table)


@app.command("compare")
def compare(
    a: Annotated[
        str | None, typer.Argument(help="Baseline eval run (default: the latest run of the SFT policy).")
    ] = None,
    b: Annotated[
        str | None, typer.Argument(help="Eval run to check (default: the latest RL checkpoint's).")
    ] = None,
    project: ProjectOption = None,
    n_boot: Annotated[int, typer.Option(min=100, help="Bootstrap resamples.")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Paired comparison per dimension; exit 3 when a critical dimension regressed."""
    from tether.evals.compare import compare_runs
    from tether.evals.history import comparison_pairs

    proj = open_project(project)
    pairs = comparison_pairs(proj, a, b)
    comparisons = [compare_runs(x, y, proj.spec, n_boot=n_boot, seed=seed) for x, y in pairs]
    if len(pairs) == 1 and "policy" not in (pairs[0][0].checkpoint_kind, pairs[0][1].checkpoint_kind):
        err_console.print(
            "[yellow]note[/] the SFT policy has no eval run, so B is not compared with the SFT baseline; "
            "run `tether eval run --checkpoint sft`"
        )
    if as_json:
        console.print_json(json.dumps([c.as_dict() for c in comparisons]))
    else:
        for comparison in comparisons:
            _print_comparison(comparison)
    critical = sorted({d.dimension for c in comparisons for d in c.critical_regressions})
    if critical:
        raise QualityGateFailed(
            f"critical dimension{'s' if len(critical) > 1 else ''} {', '.join(critical)} regressed "
            f"in {comparisons[0].b}: the whole 95% interval of the change is below zero"
        )


def _run_json(result: EvalRun) -> dict[str, Any]:
    return {
        "artifact_id": result.artifact_id,
        "run_dir": str(result.run_dir),
        "checkpoint": result.checkpoint,
        "checkpoint_kind": result.checkpoint_kind,
        "scores": result.scores,
        "pending": result.pending,
        "summary": result.summary,
    }


def _print_summary(result: EvalRun) -> None:
    table = Table("dimension", "mean", "95% CI", "pass rate", "cases", "pending", "errors", "by stratum")
    for name, entry in result.summary.get("dimensions", {}).items():
        strata = "  ".join(f"{s} {_fmt(e['mean'], 2)}" for s, e in entry.get("strata", {}).items())
        table.add_row(
            escape(name), _fmt(entry["mean"]), f"[{_fmt(entry['low'])}, {_fmt(entry['high'])}]",
            _fmt(entry["pass_rate"], 2), str(entry["n_cases"]), str(entry["pending"]), str(entry["errors"]),
            escape(strata),
        )  # fmt: skip
    console.print(table)
    if result.pending:
        console.print(
            f"{result.pending} samples await human grades; "
            f"then run `tether eval collect {result.artifact_id}`"
        )


def _print_comparison(comparison: Comparison) -> None:
    console.print(f"[bold]{escape(comparison.b)}[/] vs [bold]{escape(comparison.a)}[/]")
    table = Table("dimension", "critical", "A", "B", "delta B-A", "95% CI", "pairs", "verdict")
    for d in comparison.dimensions:
        iv = d.delta
        verdict = (
            "[bold red]REGRESSED[/]" if d.regressed else "[green]improved[/]" if d.improved else "no change"
        )
        table.add_row(
            escape(d.dimension), "yes" if d.critical else "", _fmt(d.a_mean), _fmt(d.b_mean),
            f"{iv.mean:+.3f}" if iv else "-", f"[{iv.low:+.3f}, {iv.high:+.3f}]" if iv else "-",
            str(d.n_pairs), verdict,
        )  # fmt: skip
    console.print(table)
    for warning in comparison.warnings:
        console.print(f"[yellow]warning[/] {escape(warning)}")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
