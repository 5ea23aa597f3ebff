"""`tether feedback`: ingest production feedback, route it to review, and watch for drift.

    tether feedback keys create prod-gateway      # an API key for POST /api/v1/feedback (shown once)
    tether feedback ingest flagged.jsonl          # or POST the items to the web app
    tether feedback review --route                # sample into grading tasks; graded-low ones to comparisons
    tether feedback drift --json                  # prompt drift and the RM's accuracy on production labels
    tether feedback recalibrate --apply           # raters due under the spec's recalibration schedule
    tether feedback status

Exit codes: 0 ok; 2 bad input (an ingest with rejected lines, after keeping the good ones);
3 `drift` found the prompt mix drifted or the reward model below its gate on production labels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tether.cli.common import ProjectOption, console, open_project
from tether.errors import QualityGateFailed, TetherInputError

app = typer.Typer(
    help="Ingest production feedback, route it to review, and check drift.", no_args_is_help=True
)
keys_app = typer.Typer(help="Create, list and revoke project API keys for the feedback endpoint.")
app.add_typer(keys_app, name="keys")

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
MAX_REJECTS_SHOWN = 50


@app.command("ingest")
def ingest(
    file: Annotated[Path, typer.Argument(help="JSONL of flagged items (see docs/feedback.md).")],
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store a file's flagged items, each once; bad lines are reported with their line numbers."""
    from tether.feedback.ingest import ingest_file

    proj = open_project(project)
    with console.status(f"ingesting {file}"):
        report = ingest_file(proj, file)
    if as_json:
        rejected = [{"line": r.line, "reason": r.reason} for r in report.rejected]
        data = {"lines": report.lines, "stored": report.stored, "duplicates": report.duplicates}
        console.print_json(json.dumps({**data, "rejected": rejected}))
    else:
        console.print(
            f"{report.lines} lines: stored {report.stored}, already stored {report.duplicates}, "
            f"rejected {len(report.rejected)}"
        )
        for bad in report.rejected[:MAX_REJECTS_SHOWN]:
            console.print(f"  line {bad.line}: {escape(bad.reason)}")
        if len(report.rejected) > MAX_REJECTS_SHOWN:
            console.print(f"  ... and {len(report.rejected) - MAX_REJECTS_SHOWN} more")
    if report.rejected:
        good = report.stored + report.duplicates
        raise TetherInputError(
            f"{len(report.rejected)} of {report.lines} lines rejected; the {good} good ones are stored. "
            "Fix the rejected lines and ingest the file again (nothing is stored twice)."
        )


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="What sends with this key, e.g. prod-gateway.")],
    project: ProjectOption = None,
) -> None:
    """Create an API key of scope "feedback"; the key is shown once and only its hash is stored."""
    from tether.store.api_keys import create_api_key

    proj = open_project(project)
    project_id = proj.project_id
    with proj.store.session() as session:
        record, key = create_api_key(session, project_id=project_id, name=name)
    console.print(
        f"API key '{escape(record.name)}' (scope {record.scope}); store it now, it is not shown again:"
    )
    console.print(key, markup=False, highlight=False)


@keys_app.command("list")
def keys_list(project: ProjectOption = None) -> None:
    """The project's API keys (names and status; plain keys are never stored)."""
    from tether.store.api_keys import list_api_keys

    proj = open_project(project)
    project_id = proj.project_id
    with proj.store.session() as session:
        keys = list_api_keys(session, project_id=project_id)
    table = Table("name", "scope", "status", "created")
    for k in keys:
        table.add_row(
            escape(k.name), k.scope, "revoked" if k.revoked else "live", f"{k.created_at:%Y-%m-%d %H:%M}"
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The key's name.")], project: ProjectOption = None
) -> None:
    """Revoke a key: requests with it are refused from now on."""
    from tether.store.api_keys import revoke_api_key

    proj = open_project(project)
    project_id = proj.project_id
    with proj.store.session() as session:
        revoke_api_key(session, project_id=project_id, name=name)
    console.print(f"revoked API key '{escape(name)}'")


@app.command("review")
def review(
    project: ProjectOption = None,
    route: Annotated[
        bool, typer.Option("--route", help="Also turn graded-low items into production comparison tasks.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the review sample and the fresh responses.")] = 0,
) -> None:
    """Send the spec's review_share of new items to human grading; with --route, route graded ones."""
    from tether.feedback.review import review as run_review
    from tether.feedback.review import route_reviewed

    proj = open_project(project)
    report = run_review(proj, seed=seed)
    share = proj.spec.feedback.review_share
    console.print(
        f"{report.considered} new items: {report.to_review} to review as grading tasks "
        f"(review_share {share:.0%}), {report.skipped} skipped"
    )
    if route:
        with console.status("sampling fresh responses from the current policy"):
            routed = route_reviewed(proj, seed=seed)
        console.print(f"{routed} graded-low items became production comparison tasks for the next labeling")


@app.command("drift")
def drift(
    project: ProjectOption = None,
    reward_model: Annotated[
        str | None, typer.Option("--reward-model", help="Reward model artifact id (default: latest).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the two-sample test.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Compare recent production prompts with the RM's training prompts and re-measure its accuracy."""
    from tether.feedback.check import check

    proj = open_project(project)
    with console.status("testing the production prompt mix for drift"):
        result = check(proj, seed=seed, reward_model=reward_model)
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
    else:
        console.print(f"[dim]reference:[/] {escape(result.drift.reference)}")
        console.print(f"drift: {escape(result.drift.reason)}")
        console.print(f"reward model on production labels: {escape(result.accuracy.reason)}")
        for due in result.raters_due:
            console.print(f"due for recalibration: {escape(due.name)} ({escape(due.reason)})")
        console.print(f"[dim]recorded as run {result.run_id}[/]")
    if result.failed:
        raise QualityGateFailed("; ".join(alert["message"] for alert in result.alerts))


@app.command("recalibrate")
def recalibrate(
    project: ProjectOption = None,
    apply: Annotated[bool, typer.Option("--apply", help="Send the due raters back to calibration.")] = False,
) -> None:
    """Raters due for recalibration under the spec's schedule (every N days or N judgments)."""
    from tether.feedback.schedule import apply_recalibration, raters_due

    proj = open_project(project)
    policy = proj.spec.labeling
    if policy.recalibrate_every_days is None and policy.recalibrate_every_judgments is None:
        console.print("no schedule: set labeling.recalibrate_every_days or recalibrate_every_judgments")
        return
    due = raters_due(proj)
    for d in due:
        console.print(f"{escape(d.name)}: {escape(d.reason)}")
    if not due:
        console.print("no rater is due for recalibration")
    elif apply:
        apply_recalibration(proj, due)
        console.print(f"{len(due)} raters sent back to calibration (a fresh anchor round)")
    else:
        console.print("[dim]run with --apply to send them back to calibration[/]")


@app.command("status")
def status(project: ProjectOption = None, as_json: JsonOption = False) -> None:
    """Feedback items by status, live API keys and raters due for recalibration."""
    from tether.feedback.check import RUN_KIND
    from tether.feedback.schedule import raters_due
    from tether.store import list_runs
    from tether.store.api_keys import list_api_keys
    from tether.store.feedback import feedback_counts

    proj = open_project(project)
    project_id = proj.project_id
    with proj.store.session() as session:
        counts = feedback_counts(session, project_id=project_id)
        live = [k.name for k in list_api_keys(session, project_id=project_id) if not k.revoked]
        checks = list_runs(session, project_id=project_id, kind=RUN_KIND)
    due = raters_due(proj)
    last = checks[-1] if checks else None
    drift = last.meta.get("drift", {}) if last else {}
    if as_json:
        data = {
            "counts": counts,
            "live_keys": live,
            "raters_due": [d.name for d in due],
            "last_check": {"run_id": last.id, "drift": drift.get("verdict")} if last else None,
        }
        console.print_json(json.dumps(data))
        return
    console.print("feedback items: " + ", ".join(f"{s} {n}" for s, n in counts.items()))
    console.print(f"live API keys: {len(live)}" + (f" ({escape(', '.join(live))})" if live else ""))
    console.print(f"raters due for recalibration: {len(due)}")
    if last is not None:
        when = f"{last.started_at:%Y-%m-%d %H:%M}"
        console.print(f"last drift check ({last.id}, {when}): {escape(str(drift.get('reason', '')))}")
