"""`tether raters …`: add people, report agreement and bias, and make manual status decisions."""

from __future__ import annotations

import json
import shlex
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tether.cli.common import ProjectOption, console, open_project
from tether.errors import TetherInputError

app = typer.Typer(help="Add, calibrate, exclude and report on raters.", no_args_is_help=True)
Reason = Annotated[str, typer.Option("--reason", help="Why; recorded in the rater's history.")]


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Rater name.")],
    project: ProjectOption = None,
    kind: Annotated[str, typer.Option(help="human or ai.")] = "human",
    admin: Annotated[bool, typer.Option("--admin", help="An admin account for the dashboard.")] = False,
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help="An extra role, repeatable: redteam (may submit red-team findings)."),
    ] = None,
) -> None:
    """Add a rater and print their sign-in token once (only its hash is stored)."""
    from tether.labeling.raters import add_person, rater_roles

    if kind not in ("human", "ai"):
        raise TetherInputError(f"--kind must be human or ai, got '{kind}'")
    rater, token = add_person(open_project(project), name=name, kind=kind, admin=admin, roles=role or ())
    extra = "".join(f", {r}" for r in rater_roles(rater))
    what = "admin" if rater.is_admin else f"{rater.kind} rater, {rater.status}{extra}"
    console.print(f"added {escape(rater.name)} ({what})")
    console.print(f"token (shown once, keep it safe): [bold]{token}[/]")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


@app.command("status")
def status(
    project: ProjectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Per-rater agreement with experts (calibration and hidden anchors apart) and peers, biases,
    effort and failed hidden-anchor cycles; pool agreement."""
    from tether.labeling.raters import rater_roles
    from tether.labeling.report import raters_status
    from tether.store.raters import list_raters

    proj = open_project(project)
    report = raters_status(proj)
    with proj.store.session() as session:
        roles = {r.name: list(rater_roles(r)) for r in list_raters(session, project_id=proj.project_id)}
    for r in report["raters"]:
        r["roles"] = roles.get(r["name"], [])
    if as_json:
        console.print_json(json.dumps(report))
        return
    table = Table(
        "rater",
        "kind",
        "status",
        "roles",
        "judg.",
        "calib.",
        "hidden",
        "cycles",
        "majority",
        "left",
        "longer",
        "ties",
        "sec",
        "copy",
        "peer flag",
    )
    for r in report["raters"]:
        table.add_row(
            escape(r["name"]),
            r["kind"],
            r["status"],
            ", ".join(r["roles"]) or "-",
            _fmt(r.get("judgments")),
            _fmt(r.get("calibration_agreement")),
            _fmt(r.get("hidden_anchor_agreement")),
            _fmt(r.get("recalibrations")),
            _fmt(r.get("majority_agreement")),
            _fmt(r.get("position_bias")),
            _fmt(r.get("length_bias")),
            _fmt(r.get("tie_rate")),
            _fmt(r.get("median_seconds")),
            _fmt(r.get("repeated_rationale_share")),
            ", ".join(r.get("peer_flags", [])) or "-",
        )
    console.print(table)
    pool = report["pool"]
    dims = ", ".join(f"{d} {_fmt(a)}" for d, a in pool["alpha_by_dimension"].items())
    console.print(
        f"pool: pairwise agreement {_fmt(pool['pairwise_agreement'])}, "
        f"Krippendorff's alpha {_fmt(pool['alpha'])} ({dims}); "
        f"{len(pool['kappas'])} rater pairs with Cohen's kappa"
    )
    console.print("experts: agreement in calibration rounds (calib.) and on hidden anchors (hidden)")
    for r in report["raters"]:
        if r["status"] != "active" and r["reason"]:
            console.print(f"  {escape(r['name'])} ({r['status']}): {escape(r['reason'])}")
        if r.get("held_labels"):
            console.print(
                f"  {escape(r['name'])}: {r['held_labels']} live labels from a failed hidden-anchor window "
                "held out of training until recalibration is passed"
            )
    _print_peer_flags(report)
    _print_edit_flags(report)


def _print_edit_flags(report: dict[str, Any]) -> None:
    """Raters who favor a style edit on the loop's counterfactual pairs; no action taken."""
    flagged = [r for r in report["raters"] if r.get("edit_flags") and r["status"] != "excluded"]
    if not flagged:
        return
    console.print("style bias on counterfactual pairs (review; exclusion is an admin decision):")
    for r in flagged:
        for flag in r["edit_flags"]:
            console.print(f"  {escape(r['name'])}: {escape(flag['detail'])}")
        reason = "; ".join(flag["detail"] for flag in r["edit_flags"])
        console.print(
            f'    tether raters exclude {escape(shlex.quote(r["name"]))} --reason "{escape(reason)}"'
        )


def _print_peer_flags(report: dict[str, Any]) -> None:
    """Raters far below the pool on a dimension, with the command an admin would run; no action taken."""
    medians = report["pool"]["peer_median"]
    flagged = [r for r in report["raters"] if r.get("peer_flags") and r["status"] != "excluded"]
    if not flagged:
        return
    console.print("peer agreement far below the pool (review; exclusion is an admin decision):")
    for r in flagged:
        figures = "; ".join(
            f"{d} {_fmt(r['peer_agreement'][d])} over {r['peer_items'][d]} tasks vs pool median "
            f"{_fmt(medians[d])}"
            for d in r["peer_flags"]
        )
        console.print(f"  {escape(r['name'])}: agrees with the other raters' majority on {escape(figures)}")
        reason = f"peer agreement {figures}"
        console.print(
            f'    tether raters exclude {escape(shlex.quote(r["name"]))} --reason "{escape(reason)}"'
        )


@app.command("recalibrate")
def recalibrate(name: str, project: ProjectOption = None, reason: Reason = "recalibration requested") -> None:
    """Start calibration over on a fresh anchor ordering."""
    from tether.labeling import raters

    rater = raters.recalibrate(open_project(project), name=name, reason=reason)
    console.print(f"{escape(rater.name)} is {rater.status} (round {rater.calibration_round})")


@app.command("exclude")
def exclude(name: str, reason: Reason, project: ProjectOption = None) -> None:
    """Exclude a rater from training data; their labels stay for analysis."""
    from tether.labeling import raters

    rater = raters.exclude(open_project(project), name=name, reason=reason)
    console.print(f"{escape(rater.name)} is {rater.status}")


@app.command("readmit")
def readmit(name: str, reason: Reason, project: ProjectOption = None) -> None:
    """Readmit a rater to training data."""
    from tether.labeling import raters

    rater = raters.readmit(open_project(project), name=name, reason=reason)
    console.print(f"{escape(rater.name)} is {rater.status}")
