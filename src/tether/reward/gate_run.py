"""Evaluate a reward model, run its bias probes, gate it, and register the verdict: one call.

    result = evaluate_and_gate(project, "reward_model-3f2a...", out=Path("rm_eval/loop-1"))
    result.passed, result.verdict.failures, result.artifact_id

`tether rm eval --gate` and the loop's gate step both call this, so a gate decided in the loop is
the same artifact, with the same figures, as one decided by hand. It returns the artifact it
registered (never "the latest rm_eval"), and it prints nothing: progress goes through `say` and
`status`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.reward.eval_inputs import EvalInputs, Say, load_inputs, pair_context

if TYPE_CHECKING:
    from tether.project import Project
    from tether.reward.evaluate import RMReport
    from tether.reward.gate import GateVerdict
    from tether.reward.probes import ProbeResult
    from tether.spec import Spec

Status = Callable[[str], AbstractContextManager[object]]


@dataclass(frozen=True)
class RMEvalResult:
    """One evaluation of a reward model: the report, its probes, the gate verdict and its artifact."""

    artifact_id: str
    """The `rm_eval` artifact this evaluation registered."""
    reward_model: str
    """Artifact id of the reward model (its directory name when unregistered)."""
    json_path: Path
    html_path: Path
    report: RMReport
    probes: list[ProbeResult]
    verdict: GateVerdict | None
    """None when the evaluation was not gated."""

    @property
    def passed(self) -> bool:
        return self.verdict is not None and self.verdict.passed


def evaluate_and_gate(
    project: Project,
    reward_model: str | None,
    *,
    data: str | None = None,
    gate: bool = True,
    out: Path | None = None,
    probe_limit: int = 1000,
    batch_size: int = 64,
    seed: int = 0,
    say: Say = lambda _text: None,
    status: Status = lambda _text: nullcontext(),
) -> RMEvalResult:
    """Held-out evaluation of `reward_model` (an id or directory; None: the latest), probes and gate.

    Writes rm_eval.json and rm_eval.html into `out` (default .tether/rm_eval/<id>/) and registers
    them as an `rm_eval` artifact, child of the reward model and its export. A failed gate is a
    result, not an exception: the caller decides (the CLI exits 3, the loop remediates)."""
    from tether.reward.evaluate import evaluate_reward_model
    from tether.reward.gate import check_gate
    from tether.reward.probes import probe_context, run_probes

    with status("loading the reward model"):
        inputs = load_inputs(project, reward_model, data, say=say)
    spec = project.spec
    pairs = pair_context(project, inputs.rows)
    with status(f"scoring {len(inputs.rows)} held-out pairs"):
        report = evaluate_reward_model(
            inputs.model,
            inputs.rows,
            spec=spec,
            gold=pairs.gold,
            a_is_chosen=pairs.a_is_chosen,
            batch_size=batch_size,
            seed=seed,
        )
    report = replace(report, context=inputs.context())
    probes: list[ProbeResult] = []
    verdict = None
    if gate:
        with status("running bias probes"):
            probes = run_probes(
                inputs.model,
                inputs.rows,
                limit=probe_limit,
                seed=seed,
                batch_size=batch_size,
                fair=pairs.fair_edit,
                context=probe_context(project),
            )
        verdict = check_gate(report, probes, spec)
    out_dir = out or project.path("rm_eval", inputs.ident, "rm_eval.json").parent
    json_path, html_path = write_outputs(out_dir, report, probes, verdict, spec)
    record_id = register_eval(inputs, json_path, report, verdict)
    return RMEvalResult(record_id, inputs.ident, json_path, html_path, report, probes, verdict)


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
    payload: dict[str, Any] = {"report": report.to_dict(), "probes": [probe_json(p) for p in probes]}
    if verdict is not None:
        payload["gate"] = asdict(verdict)
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(json_path)  # a reader never sees half a verdict
    bars = {d.id: d.gate.min_accuracy for d in spec.dimensions}
    html_path = write_report(out_dir / "rm_eval.html", report, probes, verdict=verdict, dimension_bars=bars)
    return json_path, html_path


def register_eval(inputs: EvalInputs, json_path: Path, report: RMReport, verdict: GateVerdict | None) -> str:
    """Register rm_eval.json as an `rm_eval` artifact, child of the reward model and the export."""
    from tether.artifacts import RM_EVAL_KIND
    from tether.hashing import content_sha256
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
    with project.store.session() as session:
        record = register_artifact(
            session,
            project_id=project.project_id,
            kind=RM_EVAL_KIND,
            path=project.relative(json_path),
            content_hash=content_sha256(json_path),
            spec_hash=project.spec_hash,
            parents=parents,
            meta=meta,
        )
    return record.id


def probe_json(result: ProbeResult) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(result).items()}
