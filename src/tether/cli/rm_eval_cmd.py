"""`tether rm eval` and `tether rm probe`: held-out evaluation, bias probes and the gate before RL.

    tether rm eval                    # latest reward model, on its export's test split
    tether rm eval rm-3f2a... --gate  # plus probes and the spec's thresholds; exit 3 when it fails
    tether rm probe --probe filler    # one probe alone

Outputs go to .tether/rm_eval/<reward model id>/ unless --out says otherwise: not into the checkpoint
directory itself, whose content hash is the reward model's registered identity. The work is
`tether.reward.gate_run.evaluate_and_gate`; this module parses options and prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tether.cli.common import ProjectOption, console, open_project
from tether.errors import QualityGateFailed, TetherInputError
from tether.reward.eval_inputs import load_inputs, pair_context
from tether.reward.gate_run import probe_json

if TYPE_CHECKING:
    from tether.reward.evaluate import RMReport
    from tether.reward.gate import GateVerdict
    from tether.reward.probes import ProbeResult
    from tether.spec import Spec

CheckpointArg = Annotated[
    str | None,
    typer.Argument(
        help="Reward model artifact id or checkpoint directory (default: the latest reward model)."
    ),
]
DataOption = Annotated[
    str | None,
    typer.Option(
        "--data", help="Export artifact id or directory (default: the export the model was trained on)."
    ),
]
OutOption = Annotated[
    Path | None, typer.Option("--out", help="Output directory (default: .tether/rm_eval/<id>).")
]
LimitOption = Annotated[
    int, typer.Option("--probe-limit", min=1, help="Most responses each probe edits (a seeded sample).")
]
BatchOption = Annotated[int, typer.Option("--batch-size", min=1, help="Sequences per forward pass.")]
SeedOption = Annotated[int, typer.Option(help="Seed of bootstrap intervals, baselines and probe sampling.")]


def evaluate(
    checkpoint: CheckpointArg = None,
    data: DataOption = None,
    gate: Annotated[
        bool, typer.Option("--gate", help="Run the probes and check the spec's thresholds.")
    ] = False,
    out: OutOption = None,
    project: ProjectOption = None,
    probe_limit: LimitOption = 1000,
    batch_size: BatchOption = 64,
    seed: SeedOption = 0,
) -> None:
    """Evaluate a reward model on held-out pairs; with --gate, exit 3 when it misses the spec's bars."""
    from tether.reward.gate_run import evaluate_and_gate

    proj = open_project(project)
    result = evaluate_and_gate(
        proj, checkpoint, data=data, gate=gate, out=out, probe_limit=probe_limit, batch_size=batch_size,
        seed=seed, say=lambda text: console.print(f"[dim]{escape(text)}[/]"), status=console.status,
    )  # fmt: skip
    print_report(result.report, proj.spec)
    if result.probes:
        print_probes(result.probes, proj.spec)
    console.print(
        f"rm_eval {result.artifact_id}: {escape(str(result.json_path))}, {escape(str(result.html_path))}"
    )
    if result.verdict is not None:
        print_verdict(result.verdict)
        if not result.verdict.passed:
            raise QualityGateFailed(
                f"reward model {result.reward_model} failed its gate ({len(result.verdict.failures)} of "
                f"the spec's thresholds missed); see {result.html_path}"
            )


def probe(
    checkpoint: CheckpointArg = None,
    data: DataOption = None,
    names: Annotated[
        list[str] | None, typer.Option("--probe", help="Probe to run (repeatable; default: all).")
    ] = None,
    out: OutOption = None,
    project: ProjectOption = None,
    probe_limit: LimitOption = 1000,
    batch_size: BatchOption = 64,
    seed: SeedOption = 0,
) -> None:
    """Run counterfactual bias probes alone: edits that should not raise a response's reward."""
    from tether.reward.probes import make_probe, probe_context, run_probes

    proj = open_project(project)
    context = probe_context(proj)
    try:
        specs = [make_probe(name, context) for name in names] if names else None
    except KeyError as exc:
        raise TetherInputError(str(exc.args[0])) from None
    with console.status("loading the reward model"):
        inputs = load_inputs(proj, checkpoint, data, say=_say)
    with console.status("running bias probes"):
        fair = pair_context(inputs.project, inputs.rows).fair_edit
        results = run_probes(
            inputs.model,
            inputs.rows,
            specs,
            limit=probe_limit,
            seed=seed,
            batch_size=batch_size,
            fair=fair,
            context=context,
        )
    out_dir = out or inputs.project.path("rm_eval", inputs.ident, "rm_probes.json").parent
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "rm_probes.json"
    payload = {"context": inputs.context(), "probes": [probe_json(r) for r in results]}
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_probes(results, inputs.project.spec)
    console.print(f"probes: {escape(str(path))}")


def _say(text: str) -> None:
    console.print(f"[dim]{escape(text)}[/]")


# --- printing ---------------------------------------------------------------------------------------------


def _f(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def print_report(report: RMReport, spec: Spec) -> None:
    o = report.overall
    console.print(
        f"held-out accuracy {_f(o.accuracy)} (95% CI {_f(o.low)}-{_f(o.high)}) on {report.n_pairs} pairs"
        + (f", {report.ties_skipped} ties skipped" if report.ties_skipped else "")
    )
    table = Table("dimension", "accuracy", "95% CI", "n", "gate min", *(["vs gold"] if report.gold else []))
    for dim, acc in report.by_dimension.items():
        bar = next(
            (
                f"{d.gate.min_accuracy:.2f}" + (" (critical)" if d.critical else "")
                for d in spec.dimensions
                if d.id == dim
            ),
            "-",
        )
        gold = (
            [_f(report.gold.by_dimension[dim].accuracy)]
            if report.gold and dim in report.gold.by_dimension
            else []
        )
        table.add_row(escape(dim), _f(acc.accuracy), f"{_f(acc.low)}-{_f(acc.high)}", str(acc.n), bar, *gold)
    console.print(table)
    c, b = report.calibration, report.baselines
    console.print(f"calibration: ECE {_f(c.ece)} ({c.n_bins} bins), Brier {_f(c.brier)}")
    console.print(
        f"baselines: pick longer {_f(b.pick_longer)}, pick A {_f(b.pick_a)} ({b.position_source}); "
        f"reward-length correlation {_f(report.length_correlation)}"
    )
    if report.gold:
        console.print(
            f"against gold: {_f(report.gold.overall.accuracy)} on {report.gold.overall.n} pairs "
            f"(labels agree with gold on {_f(report.gold.labels_agree)})"
        )


def print_probes(results: list[ProbeResult], spec: Spec) -> None:
    limits = spec.reward_model.max_probe_delta
    table = Table("probe", "n", "mean Δ reward", "95% CI", "raised", "max allowed", "note")
    for r in results:
        table.add_row(
            escape(r.name),
            str(r.n),
            _f(r.mean_delta, "+.3f"),
            f"{_f(r.low, '+.3f')} to {_f(r.high, '+.3f')}",
            _f(r.raised_share, ".2f"),
            _f(limits.get(r.name), "+.2f"),
            escape(r.note),
        )
    console.print(table)


def print_verdict(verdict: GateVerdict) -> None:
    for warning in verdict.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if verdict.passed:
        console.print("[bold green]gate passed[/]")
        return
    console.print(f"[bold red]gate failed[/] ({len(verdict.failures)}):")
    for failure in verdict.failures:
        console.print(f"  - {escape(failure)}")
