"""Replay today's monitors over recorded RL runs and print each run's alerts by kind and severity.

    .venv/bin/python bench/replay_monitors.py DIR/.tether/rl/rl-*/ UNBIASED_DIR/.tether/rl/rl-*/
    .venv/bin/python bench/replay_monitors.py RUN_DIR --all      # every alert line, not only the first 12
    .venv/bin/python bench/replay_monitors.py RUN_DIR --json     # one JSON object per run

For each run directory (``<project>/.tether/rl/<run id>/``) the suite is rebuilt exactly as
`tether rl run` builds it: `tether.rl.run.build_suite` with the project's spec, and the loop's own
`KLSpikeDetector` (`tether.rl.session`). Its baseline is the SFT baseline the run measured, read
from the run's first checkpoint (``step-*/trainer/state.json``); then every line of metrics.jsonl
is fed in order, with that step's generations where samples.jsonl has them, their gold re-graded
by the sandbox from the pool prompt (the loop grades them the same way). A replay stops at the
first critical alert, where the run would have stopped. The alerts the run recorded
(alerts.jsonl) are printed next to the replayed ones.

What a replay cannot reproduce: a run saves its generations only every ``sample_every`` steps
(10 by default), so the monitors that read generations (strata_uniform_high) see one step in ten:
their 10-step pooling window then holds about 8 hard responses, under the monitor's minimum, and
they stay silent. ``--strata`` prints, instead, the monitor's pooled decision over blocks of
sampled steps (RM shape on hard/adversarial prompts, their gold against step 0) for a reader to
judge. Every metric-based monitor replays exactly.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.monitors import Generation, HackingAlert, MonitorSuite
from tether.monitors.kl import spike_alert
from tether.monitors.reward import uniform_high_verdict
from tether.monitors.sinks import format_alert
from tether.monitors.strata import PREFIX, strata_sums
from tether.monitors.suite import by_kind, describe_counts
from tether.project import Project
from tether.rl.kl_control import KLSpikeDetector


@dataclass(frozen=True)
class RecordedRun:
    run_dir: Path
    project: Project
    metrics: list[dict[str, Any]]
    samples: dict[int, list[dict[str, Any]]]
    """samples.jsonl rows by step."""
    recorded: list[HackingAlert]
    baseline: dict[str, float] | None
    baseline_from: str


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_run(run_dir: Path) -> RecordedRun:
    run_dir = run_dir.resolve()
    project = Project.open(run_dir.parents[2])  # <project>/.tether/rl/<run id>
    samples: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in read_jsonl(run_dir / "samples.jsonl"):
        samples[int(row["step"])].append(row)
    recorded = [HackingAlert.from_dict(a) for a in read_jsonl(run_dir / "alerts.jsonl")]
    baseline, source = recorded_baseline(run_dir)
    return RecordedRun(
        run_dir, project, read_jsonl(run_dir / "metrics.jsonl"), dict(samples), recorded, baseline, source
    )


def recorded_baseline(run_dir: Path) -> tuple[dict[str, float] | None, str]:
    """The SFT baseline the run's suite used, from its earliest checkpoint (every one holds it)."""
    for state in sorted(run_dir.glob("step-*/trainer/state.json")):
        baseline = json.loads(state.read_text(encoding="utf-8"))["monitors"]["baseline"]
        if baseline is not None:
            return {k: float(v) for k, v in baseline.items()}, state.parent.parent.name
    return None, "none saved: the first step's metrics"


def generations_by_step(run: RecordedRun) -> dict[int, list[Generation]]:
    """Each sampled step's generations, with the sandbox's gold utility as the independent score."""
    from tether.artifacts import is_sandbox
    from tether.rl.inputs import pool_prompts
    from tether.rl.metrics import gold_grades

    prompts = {p.key: p for p in pool_prompts(run.project)}
    sandbox = is_sandbox(run.project)
    out = {}
    for step, rows in run.samples.items():
        gold: list[float | None] = [None] * len(rows)
        known = [i for i, row in enumerate(rows) if row.get("prompt_key") in prompts]
        if sandbox and known:
            grades = gold_grades(
                [prompts[rows[i]["prompt_key"]] for i in known], [rows[i]["response"] for i in known]
            )
            for i, grade in zip(known, grades, strict=True):
                gold[i] = None if grade is None else grade.utility
        out[step] = [
            Generation(row["prompt"], row["response"], row["stratum"], float(row["rm_score"]), g)
            for row, g in zip(rows, gold, strict=True)
        ]
    return out


def replay(
    run: RecordedRun, generations: dict[int, list[Generation]]
) -> tuple[list[HackingAlert], int | None]:
    """(alerts, the step the run would have stopped at, or None) with today's monitors."""
    from tether.rl.run import build_suite
    from tether.rl.session import SPIKE_MIN_JUMP_SHARE

    suite: MonitorSuite = build_suite(run.project, sinks=[])
    suite.baseline = dict(run.baseline) if run.baseline is not None else None
    if suite.baseline is not None and any(k.startswith(PREFIX) for k in suite.baseline):
        suite.reference_steps = 0  # the run's checkpoint already holds the reference of its first steps
    spikes = KLSpikeDetector(min_jump=SPIKE_MIN_JUMP_SHARE * run.project.spec.rl.kl_budget_nats)
    alerts: list[HackingAlert] = []
    for row in run.metrics:
        step = int(row["step"])
        metrics = {k: float(v) for k, v in row.items() if k != "step"}
        fired = []
        spike = spikes.update(metrics["objective/kl"])
        if spike is not None:
            fired.append(spike_alert(step, spike))
        fired += suite.observe(step, metrics, generations.get(step, ()))
        alerts += fired
        if any(a.severity == "critical" for a in fired):
            return alerts, step
    return alerts, None


def strata_blocks(generations: dict[int, list[Generation]], block: int) -> list[str]:
    """strata_uniform_high's decision pooled over blocks of ``block`` sampled steps, against step 0."""
    steps = sorted(generations)
    if not steps:
        return []
    reference = strata_sums(generations[steps[0]])
    lines = []
    for i in range(1, len(steps), block):
        chunk = steps[i : i + block]
        verdict = uniform_high_verdict(
            [strata_sums(generations[s]) for s in chunk],
            reference,
            ("hard", "adversarial"),
            min_count=8,  # step 0 alone is the reference here: one step's hard responses
            min_gap=0.0,
            max_spread_ratio=0.5,
            agree_z=2.0,
        )
        if verdict is None:
            lines.append(f"steps {chunk[0]}-{chunk[-1]}: too few hard/adversarial responses")
            continue
        gold = (
            f"gold on hard {verdict.independent_reference.mean:.3f} (step {steps[0]}) -> "
            f"{verdict.independent_now.mean:.3f}, rise {verdict.independent_rise_z:+.1f} s.e."
            if verdict.independent_now
            and verdict.independent_reference
            and verdict.independent_rise_z is not None
            else "no gold"
        )
        lines.append(
            f"steps {chunk[0]}-{chunk[-1]}: RM hard {verdict.hard_rm.mean:+.2f}±{verdict.hard_rm.std:.2f} "
            f"(n {verdict.hard_rm.n}) vs other {verdict.other_rm.mean:+.2f}±{verdict.other_rm.std:.2f}: "
            f"gap {verdict.gap:+.2f}, spread {verdict.spread:.2f}, "
            f"RM rise {'n/a' if verdict.rm_rise_z is None else f'{verdict.rm_rise_z:+.1f} s.e.'}; "
            f"{gold} -> "
            f"{'FIRES' if verdict.fires else 'quiet'}"
        )
    return lines


def show(run: RecordedRun, alerts: Sequence[HackingAlert], stopped: int | None, limit: int | None) -> None:
    steps = len(run.metrics)
    sampled = len(run.samples)
    print(f"== {run.run_dir}  ({steps} steps, {sampled} with samples; baseline: {run.baseline_from})")
    print(f"  replayed: {describe_counts(by_kind(alerts))}")
    if stopped is not None:
        print(f"  (the run would stop at step {stopped} on a critical alert)")
    for alert in list(alerts)[:limit]:
        print(f"    {format_alert(alert)}")
    if limit is not None and len(alerts) > limit:
        print(f"    ... {len(alerts) - limit} more (--all)")
    print(f"  recorded: {describe_counts(by_kind(run.recorded))}")
    for alert in run.recorded[:limit]:
        print(f"    {format_alert(alert)[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories: <project>/.tether/rl/<run id>")
    parser.add_argument("--all", action="store_true", help="print every alert, not only the first 12")
    parser.add_argument("--json", action="store_true", help="one JSON object per run instead of text")
    parser.add_argument("--strata", type=int, default=0, metavar="K", help="also print strata_uniform_high's "
                        "decision pooled over blocks of K sampled steps")  # fmt: skip
    args = parser.parse_args()
    for run_dir in args.runs:
        run = load_run(run_dir)
        generations = generations_by_step(run)
        alerts, stopped = replay(run, generations)
        if args.json:
            print(json.dumps({
                "run_dir": str(run.run_dir),
                "steps": len(run.metrics),
                "stopped_at": stopped,
                "replayed": [a.to_dict() for a in alerts],
                "recorded": [a.to_dict() for a in run.recorded],
            }))  # fmt: skip
            continue
        show(run, alerts, stopped, None if args.all else 12)
        if args.strata:
            print(f"  strata_uniform_high pooled over {args.strata} sampled steps:")
            for line in strata_blocks(generations, args.strata):
                print(f"    {line}")


if __name__ == "__main__":
    main()
