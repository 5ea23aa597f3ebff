"""The five lines `tether demo` and `tether loop` end with, whether the loop completed or stopped.

    for line in summary_lines(result.iterations, report_path, seconds=312.0):
        print(line)

Raters and labels, the reward model and its gate, gold utility per iteration, the last RL run (or
why the loop stopped), and where the report is with what to do next.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.feedback.loop.results import CollectResult, GateResult
from tether.feedback.loop.results_policy import EvalsResult, RLResult

if TYPE_CHECKING:
    from tether.store.iterations import IterationRecord

NEXT_STEP = {
    "gate": (
        "the targeted relabeling did not bring the reward model over its bars; label more where the "
        "report's gate attempts point (or revisit bars the labels cannot carry), then `tether loop` "
        "resumes at collect"
    ),
    "rl": (
        "a critical alert stopped RL; read the alert in the report, fix the reward model or the KL "
        "settings, then `tether loop` reruns the RL step"
    ),
}
"""What to do after a stop at each step; other steps: fix the cause, then `tether loop` resumes."""


def next_step(stopped_at: str | None) -> str:
    return NEXT_STEP.get(stopped_at or "", "fix the cause above, then `tether loop` resumes at that step")


def _f(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def _ran(record: IterationRecord, step: str) -> dict[str, Any] | None:
    value = record.results.get(step)
    return value if isinstance(value, dict) and not value.get("skipped") else None


def summary_lines(iterations: Sequence[IterationRecord], report: Path, *, seconds: float) -> list[str]:
    """Five lines over the iterations this command worked on (the last one may have stopped)."""
    if not iterations:
        return ["no iteration ran", "", "", "", f"report: {report} ({seconds / 60:.1f} min)"]
    last = iterations[-1]
    collect = CollectResult.from_dict(_ran(last, "collect"))
    gate = GateResult.from_dict(_ran(last, "gate"))
    evals = [EvalsResult.from_dict(_ran(i, "evals")) for i in iterations]
    excluded = [r.name for r in collect.raters if r.excluded]
    filler = next((p.mean_delta for p in gate.probes if p.name == "filler"), None)
    sft = next((e.sft_gold_utility for e in evals if e.sft_gold_utility is not None), None)
    golds = " -> ".join(
        f"iteration {i.number} {_f(e.gold_utility)}" for i, e in zip(iterations, evals, strict=True)
    )
    attempts = sum(max(1, len(GateResult.from_dict(_ran(i, "gate")).attempts)) for i in iterations)
    verdict = "passed" if gate.passed else "FAILED"
    lines = [
        f"raters: {len(collect.raters)} raters, excluded {', '.join(excluded) or 'none'}; "
        f"{collect.pairs} labeled pairs",
        f"reward model: held-out accuracy {_f(gate.overall.value)}, gate {verdict} "
        f"({attempts} gate attempt(s) in {len(iterations)} iteration(s)); "
        f"filler probe {_f(filler, '+.3f')}",
        f"gold utility on the eval suites: SFT {_f(sft)} -> {golds}",
    ]
    runs = [RLResult.from_dict(_ran(i, "rl")) for i in iterations]
    if last.status == "stopped":
        stopped_at = (last.results.get("loop") or {}).get("stopped_at")
        lines.append(f"stopped in iteration {last.number} at '{stopped_at}': {last.reason_stopped}")
        lines.append(f"report: {report}; next: {next_step(stopped_at)}")
        return lines
    rl = runs[-1]
    lines.append(
        f"last RL run: KL {_f(rl.final.get('objective/kl'), '.2f')} of {_f(rl.kl_budget, 'g')} nats; "
        f"{sum(len(r.alerts) for r in runs)} alert(s) over {len(iterations)} iterations; "
        f"eval regressions vs SFT: {', '.join(evals[-1].regressions) or 'none'}"
    )
    lines.append(f"report: {report} (took {seconds / 60:.1f} min)")
    return lines
