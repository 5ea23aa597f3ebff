#!/usr/bin/env bash
# `tether demo` over seeds and thread counts, one table row each (the README's spread comes from it):
#
#     bench/demo_seeds.sh /tmp/demos                    # seeds 0-4 x OMP_NUM_THREADS 1 and 2
#     SEEDS="0 1" THREADS=2 bench/demo_seeds.sh /tmp/d  # a subset
#     JOBS=2 bench/demo_seeds.sh /tmp/demos             # two single-thread demos at a time
#
# Each demo runs in DIR/s<seed>-t<threads>/ with its log beside it; DIR/table.md gets the exit
# code, wall time, labeled pairs, gate attempts, gold utility (SFT and each iteration) and alerts.
# Runs with THREADS=1 may go JOBS at a time; multi-thread runs go one at a time, so that their
# threads have the cores they ask for.
set -uo pipefail
DIR=${1:?usage: bench/demo_seeds.sh DIR}
SEEDS=${SEEDS:-0 1 2 3 4}
THREADS=${THREADS:-1 2}
JOBS=${JOBS:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(dirname "$(command -v tether || echo "$HERE/../.venv/bin/tether")")
mkdir -p "$DIR"

run_one() {  # seed threads
    local name="s$1-t$2"
    local start=$SECONDS
    OMP_NUM_THREADS=$2 "$BIN/tether" demo --dir "$DIR/$name" --fresh --seed "$1" >"$DIR/$name.log" 2>&1
    echo "$? $((SECONDS - start))" >"$DIR/$name.status"
}

for t in $THREADS; do
    jobs_now=$([ "$t" = 1 ] && echo "$JOBS" || echo 1)
    for s in $SEEDS; do
        run_one "$s" "$t" &
        while [ "$(jobs -rp | wc -l)" -ge "$jobs_now" ]; do wait -n; done
    done
    wait
done

"$BIN/python" - "$DIR" <<'PY' | tee "$DIR/table.md"
import sys
from pathlib import Path

from tether.feedback.loop.results import CollectResult, GateResult
from tether.feedback.loop.results_policy import EvalsResult, RLResult
from tether.project import Project
from tether.store.iterations import list_iterations

root = Path(sys.argv[1])
print("| seed | threads | exit | wall | pairs | gate attempts | gold SFT -> it1 -> it2 | alerts |")
print("|---|---|---|---|---|---|---|---|")
for status in sorted(root.glob("s*-t*.status")):
    name = status.stem
    code, wall = status.read_text().split()
    seed, threads = name[1:].split("-t")
    try:
        project = Project.open(root / name)
        with project.store.session() as session:
            its = list_iterations(session, project_id=project.project_id)
    except Exception as exc:  # a demo that failed before its project existed
        print(f"| {seed} | {threads} | {code} | {int(wall) / 60:.1f} min | - | - | - | ({exc}) |")
        continue
    def step(it, name):
        value = it.results.get(name)
        return value if isinstance(value, dict) and not value.get("skipped") else None
    pairs = CollectResult.from_dict(step(its[-1], "collect")).pairs if its else 0
    attempts = "+".join(str(len(GateResult.from_dict(step(i, "gate")).attempts)) for i in its)
    evals = [EvalsResult.from_dict(step(i, "evals")) for i in its]
    sft = next((e.sft_gold_utility for e in evals if e.sft_gold_utility is not None), None)
    fmt = lambda v: "-" if v is None else f"{v:.3f}"
    gold = " -> ".join([fmt(sft), *(fmt(e.gold_utility) for e in evals)])
    alerts = sum(len(RLResult.from_dict(step(i, "rl")).alerts) for i in its)
    print(f"| {seed} | {threads} | {code} | {int(wall) / 60:.1f} min | {pairs} | {attempts} | {gold} | {alerts} |")
PY
