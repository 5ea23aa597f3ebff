"""`tether rm eval` and `tether rm probe`: held-out evaluation, bias probes and the gate before RL.

    tether rm eval                    # latest reward model, on its export's test split
    tether rm eval rm-3f2a... --gate  # plus probes and the spec's thresholds; exit 3 when it fails
    tether rm probe --probe filler    # one probe alone

Outputs go to .tether/rm_eval/<reward model id>/ unless --out says otherwise: not into the checkpoint
directory itself, whose content hash is the reward model's registered identity.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tether.cli.common import ProjectOption, ResolvedArtifact, console, open_project, resolve_artifact
from tether.errors import QualityGateFailed, TetherInputError

if TYPE_CHECKING:
    from tether.labeling.export import PreferenceRow
    from tether.project import Project
    from tether.reward.evaluate import GoldHook, RMReport
    from tether.reward.gate import GateVerdict
    from tether.reward.probes import EditGuard, ProbeResult
    from tether.reward.scoring import RewardModel
    from tether.spec import Spec

REWARD_MODEL_KIND = "reward_model"
EXPORT_KIND = "export"
CHECKPOINT_META = "tether_reward.json"

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
    from tether.reward.evaluate import evaluate_reward_model
    from tether.reward.gate import check_gate
    from tether.reward.probes import run_probes

    inputs = load_inputs(open_project(project), checkpoint, data)
    spec = inputs.project.spec
    pairs = pair_context(inputs.project, inputs.rows)
    a_is_chosen, gold = pairs.a_is_chosen, pairs.gold
    with console.status(f"scoring {len(inputs.rows)} held-out pairs"):
        report = evaluate_reward_model(
            inputs.model,
            inputs.rows,
            spec=spec,
            gold=gold,
            a_is_chosen=a_is_chosen,
            batch_size=batch_size,
            seed=seed,
        )
    report = replace(report, context=inputs.context())
    probes: list[ProbeResult] = []
    verdict = None
    if gate:
        with console.status("running bias probes"):
            probes = run_probes(
                inputs.model,
                inputs.rows,
                limit=probe_limit,
                seed=seed,
                batch_size=batch_size,
                fair=pairs.fair_edit,
            )
        verdict = check_gate(report, probes, spec)
    out_dir = out or inputs.project.path("rm_eval", inputs.ident, "rm_eval.json").parent
    json_path, html_path = write_outputs(out_dir, report, probes, verdict, spec)
    record_id = register_eval(inputs, json_path, report, verdict)
    print_report(report, spec)
    if probes:
        print_probes(probes, spec)
    console.print(f"rm_eval {record_id}: {escape(str(json_path))}, {escape(str(html_path))}")
    if verdict is not None:
        print_verdict(verdict)
        if not verdict.passed:
            raise QualityGateFailed(
                f"reward model {inputs.ident} failed its gate ({len(verdict.failures)} of the spec's "
                f"thresholds missed); see {html_path}"
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
    from tether.reward.probes import make_probe, run_probes

    try:
        specs = [make_probe(name) for name in names] if names else None
    except KeyError as exc:
        raise TetherInputError(str(exc.args[0])) from None
    inputs = load_inputs(open_project(project), checkpoint, data)
    with console.status("running bias probes"):
        fair = pair_context(inputs.project, inputs.rows).fair_edit
        results = run_probes(
            inputs.model, inputs.rows, specs, limit=probe_limit, seed=seed, batch_size=batch_size, fair=fair
        )
    out_dir = out or inputs.project.path("rm_eval", inputs.ident, "rm_probes.json").parent
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "rm_probes.json"
    payload = {"context": inputs.context(), "probes": [_json(r) for r in results]}
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_probes(results, inputs.project.spec)
    console.print(f"probes: {escape(str(path))}")


# --- inputs -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalInputs:
    project: Project
    checkpoint: ResolvedArtifact
    export: ResolvedArtifact
    rows: list[PreferenceRow]
    model: RewardModel

    @property
    def ident(self) -> str:
        return self.checkpoint.record.id if self.checkpoint.record else self.checkpoint.path.name

    def context(self) -> dict[str, str]:
        return {"reward model": self.checkpoint.describe(), "export": self.export.describe()}


def load_inputs(project: Project, checkpoint: str | None, data: str | None) -> EvalInputs:
    """The checkpoint, its export's held-out rows and the loaded model; bad input raises exit-2 errors."""
    from tether.reward.evaluate import heldout_rows
    from tether.reward.scoring import load_reward_model

    ckpt = resolve_artifact(project, kind=REWARD_MODEL_KIND, explicit=checkpoint)
    export = resolve_export(project, ckpt.path, data)
    rows = heldout_rows(export.path)
    with console.status(f"loading {ckpt.path.name}"):
        model = load_reward_model(ckpt.path)
    return EvalInputs(project, ckpt, export, rows, model)


def recorded_export(checkpoint: Path) -> str | None:
    """The export a checkpoint was trained on, per its tether_reward.json: artifact id, else path."""
    file = checkpoint / CHECKPOINT_META
    if not file.is_file():
        return None
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TetherInputError(f"{file}: not valid JSON ({exc.msg})") from exc
    export = meta.get("export") if isinstance(meta, dict) else None
    if not isinstance(export, dict):
        return None
    for key in ("artifact_id", "path"):
        if isinstance(export.get(key), str) and export[key]:
            return str(export[key])
    return None


def resolve_export(project: Project, checkpoint: Path, explicit: str | None) -> ResolvedArtifact:
    """--data, else the export recorded in the checkpoint (when it still exists), else the latest export."""
    if explicit is not None:
        return resolve_artifact(project, kind=EXPORT_KIND, explicit=explicit)
    recorded = recorded_export(checkpoint)
    if recorded is not None:
        console.print(f"[dim]the checkpoint's {CHECKPOINT_META} records export[/] {escape(recorded)}")
        try:
            return resolve_artifact(project, kind=EXPORT_KIND, explicit=recorded)
        except TetherInputError as exc:
            console.print(f"[yellow]the checkpoint's recorded export is unusable ({escape(str(exc))})[/]")
    return resolve_artifact(project, kind=EXPORT_KIND, explicit=None)


@dataclass(frozen=True)
class PairContext:
    """What the store knows about exported pairs: canonical positions and, in the sandbox, gold."""

    a_is_chosen: list[bool] | None = None
    gold: GoldHook | None = None
    fair_edit: EditGuard | None = None


def pair_context(project: Project, rows: list[PreferenceRow]) -> PairContext:
    """Whether each row's canonical response A was chosen, and the sandbox's gold hook and edit guard.

    All None when the rows' tasks are not this project's (an export from elsewhere); the gold pieces
    only exist in a sandbox project, whose prompts carry their ground truth.
    """
    from tether.sandbox.gold_pairs import edit_guard, gold_hook, sandbox_prompts_by_task
    from tether.store import latest_artifact
    from tether.store.tasks import task_view

    positions: list[bool] = []
    metas: dict[int, dict[str, Any]] = {}
    with project.store.session() as session:
        sandbox = latest_artifact(session, project_id=project.project_id, kind="sandbox_world") is not None
        for row in rows:
            try:
                view = task_view(session, task_id=row.task_id)
            except TetherInputError:
                return PairContext()
            if view.prompt != row.prompt or {view.response_a, view.response_b} != {row.chosen, row.rejected}:
                return PairContext()  # the id names some other task: the export is not from this store
            positions.append(view.response_a == row.chosen)
            metas[row.task_id] = view.prompt_meta
    if not sandbox:
        return PairContext(positions)
    by_task = sandbox_prompts_by_task(metas)
    by_text = {row.prompt: by_task[row.task_id] for row in rows if row.task_id in by_task}
    return PairContext(positions, gold_hook(metas), edit_guard(by_text))


def write_outputs(
    out_dir: Path,
    report: RMReport,
    probes: list[ProbeResult],
    verdict: GateVerdict | None,
    spec: Spec,
) -> tuple[Path, Path]:
    """rm_eval.json (report, probes, gate verdict) and rm_eval.html in `out_dir`."""
    from tether.reward.report_html import write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "rm_eval.json"
    payload: dict[str, Any] = {"report": report.to_dict(), "probes": [_json(p) for p in probes]}
    if verdict is not None:
        payload["gate"] = asdict(verdict)
    json_path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    bars = {d.id: d.gate.min_accuracy for d in spec.dimensions}
    html_path = write_report(out_dir / "rm_eval.html", report, probes, verdict=verdict, dimension_bars=bars)
    return json_path, html_path


def register_eval(inputs: EvalInputs, json_path: Path, report: RMReport, verdict: GateVerdict | None) -> str:
    """Register rm_eval.json as an `rm_eval` artifact, child of the reward model and the export."""
    from tether.hashing import content_sha256
    from tether.reward.gate import RM_EVAL_KIND
    from tether.store import register_artifact

    project = inputs.project
    parents = [r.record.id for r in (inputs.checkpoint, inputs.export) if r.record is not None]
    meta: dict[str, Any] = {
        "reward_model": inputs.checkpoint.record.id if inputs.checkpoint.record else None,
        "export": inputs.export.record.id if inputs.export.record else None,
        "n_pairs": report.n_pairs,
        "accuracy": report.overall.accuracy,
        "ece": report.to_dict()["calibration"]["ece"],
        "gated": verdict is not None,
    }
    if verdict is not None:
        meta["gate"] = {"passed": verdict.passed, "failures": verdict.failures}
    project_id = project.project_id
    with project.store.session() as session:
        record = register_artifact(
            session,
            project_id=project_id,
            kind=RM_EVAL_KIND,
            path=project.relative(json_path),
            content_hash=content_sha256(json_path),
            spec_hash=project.spec_hash,
            parents=parents,
            meta=meta,
        )
    return record.id


def _json(result: ProbeResult) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(result).items()}


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
