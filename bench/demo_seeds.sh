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

"$BIN/python" "$HERE/demo_table.py" "$DIR" | tee "$DIR/table.md"
