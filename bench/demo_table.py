"""The table of `bench/demo_seeds.sh`: one row per finished demo in DIR (also usable while it runs).

    .venv/bin/python bench/demo_table.py /tmp/demos

Each demo directory `s<seed>-t<threads>/` has a `.status` file beside it ("<exit code> <seconds>");
the row reads the rest from the project's store through the loop's typed results.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tether.feedback.loop.results import CollectResult, GateResult
from tether.feedback.loop.results_policy import EvalsResult, RLResult
from tether.project import Project
from tether.store.iterations import IterationRecord, list_iterations

HEADER = (
    "| seed | threads | exit | wall | pairs | gate attempts | gold: SFT -> it 1 -> it 2 | alerts |\n"
    "|---|---|---|---|---|---|---|---|"
)


def _step(record: IterationRecord, name: str) -> dict[str, Any] | None:
    value = record.results.get(name)
    return value if isinstance(value, dict) and not value.get("skipped") else None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def row(root: Path, status: Path) -> str:
    name = status.stem
    code, wall = status.read_text(encoding="utf-8").split()
    seed, threads = name[1:].split("-t")
    head = f"| {seed} | {threads} | {code} | {int(wall) / 60:.1f} min"
    try:
        project = Project.open(root / name)
        with project.store.session() as session:
            its = list_iterations(session, project_id=project.project_id)
    except Exception as exc:  # a demo that failed before its project existed
        return f"{head} | - | - | - | ({exc}) |"
    pairs = CollectResult.from_dict(_step(its[-1], "collect")).pairs if its else 0
    attempts = " + ".join(str(len(GateResult.from_dict(_step(i, "gate")).attempts)) for i in its)
    evals = [EvalsResult.from_dict(_step(i, "evals")) for i in its]
    sft = next((e.sft_gold_utility for e in evals if e.sft_gold_utility is not None), None)
    gold = " -> ".join([_fmt(sft), *(_fmt(e.gold_utility) for e in evals)])
    alerts = sum(len(RLResult.from_dict(_step(i, "rl")).alerts) for i in its)
    return f"{head} | {pairs} | {attempts} | {gold} | {alerts} |"


def main(root: Path) -> None:
    print(HEADER)
    for status in sorted(root.glob("s*-t*.status"), key=lambda p: (p.stem.split("-t")[1], p.stem)):
        print(row(root, status))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
