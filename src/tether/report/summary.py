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


def _f(value: Any, fmt: str = ".3f") -> str:
    return "-" if value is None else format(float(value), fmt)


def _step(record: IterationRecord, step: str) -> dict[str, Any]:
    value = record.results.get(step)
    return dict(value) if isinstance(value, dict) and not value.get("skipped") else {}


def summary_lines(iterations: Sequence[IterationRecord], report: Path, *, seconds: float) -> list[str]:
    """Five lines over the iterations this command worked on (the last one may have stopped)."""
    if not iterations:
        return ["no iteration ran", "", "", "", f"report: {report} ({seconds / 60:.1f} min)"]
    last = iterations[-1]
    collect, gate, rl = _step(last, "collect"), _step(last, "gate"), _step(last, "rl")
    excluded = [str(r.get("name")) for r in collect.get("raters") or [] if r.get("excluded")]
    probes = {p.get("name"): p for p in gate.get("probes") or []}
    filler = _f((probes.get("filler") or {}).get("mean_delta"), "+.3f")
    attempts = len(gate.get("attempts") or []) or (1 if gate else 0)
    evals = _step(last, "evals")
    golds = [_f(_step(i, "evals").get("gold_utility")) for i in iterations]
    sft = next((e for i in iterations if (e := _step(i, "evals").get("sft_gold_utility")) is not None), None)
    verdict = "passed" if gate.get("passed") else "FAILED"
    lines = [
        f"raters: {len(collect.get('raters') or [])} raters, excluded {', '.join(excluded) or 'none'}; "
        f"{collect.get('pairs', 0)} labeled pairs",
        f"reward model: held-out accuracy {_f((gate.get('overall') or {}).get('accuracy'))}, gate "
        f"{verdict} after {attempts} attempt(s); filler probe {filler}",
        f"gold utility on the eval suites: SFT {_f(sft)} -> "
        + " -> ".join(f"iteration {i.number} {g}" for i, g in zip(iterations, golds, strict=True)),
    ]
    alerts = sum(len(_step(i, "rl").get("alerts") or []) for i in iterations)
    if last.status == "stopped":
        stopped_at = (last.results.get("loop") or {}).get("stopped_at")
        lines.append(f"stopped in iteration {last.number} at '{stopped_at}': {last.reason_stopped}")
        lines.append(f"report: {report}; next: {next_step(stopped_at)}")
        return lines
    kl = (rl.get("final") or {}).get("objective/kl")
    regressions = [d for d, v in (evals.get("vs_sft") or {}).items() if v.get("regression")]
    lines.append(
        f"last RL run: KL {_f(kl, '.2f')} of {rl.get('kl_budget', '-')} nats; {alerts} alert(s) over "
        f"{len(iterations)} iterations; eval regressions vs SFT: {', '.join(regressions) or 'none'}"
    )
    lines.append(f"report: {report} (took {seconds / 60:.1f} min)")
    return lines
