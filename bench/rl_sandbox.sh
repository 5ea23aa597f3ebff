#!/usr/bin/env bash
# The RL acceptance runs on the sandbox world, through the CLI (about 15 minutes on 2 cores):
#
#     bench/rm_sandbox.sh /tmp/rm-sandbox        # first: the default pool's gated reward model
#     bench/rl_sandbox.sh /tmp/rm-sandbox /tmp/rl-unbiased
#
# A: 200 PPO steps against the gated reward model of the default (length-biased) pool, default
#    adaptive KL. B: the same with a fixed KL coefficient near zero (1e-4). C: a fresh project on
#    the same world labeled by bench/pools/unbiased.yaml, its own gated reward model, default KL.
# Curves and alerts of the three runs are printed by bench/rl_curves.py at the end.
set -euo pipefail
RM_DIR=$(cd "${1:?usage: bench/rl_sandbox.sh RM_SANDBOX_DIR UNBIASED_DIR}" && pwd)
UNBIASED=${2:?usage: bench/rl_sandbox.sh RM_SANDBOX_DIR UNBIASED_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(dirname "$(command -v tether || echo "$HERE/../.venv/bin/tether")")
T="$BIN/tether"
PY="$BIN/python"
latest_run() { ls -td "$1"/.tether/rl/rl-* | sed -n 1p; }

cd "$RM_DIR"
set +e
"$T" rl run --reward-model models/rm-clean > rl-A.log 2>&1; echo "A exit $?"
RUN_A=$(latest_run "$RM_DIR")
"$T" rl run --reward-model models/rm-clean --kl-coef 0.0001 --fixed-kl > rl-B.log 2>&1; echo "B exit $?"
RUN_B=$(latest_run "$RM_DIR")
set -e

rm -rf "$UNBIASED" && "$T" init "$UNBIASED" --template sandbox >/dev/null
cd "$UNBIASED"
"$T" sandbox build | tail -n 1
"$T" label plan --n 6400 | tail -n 1
"$T" label plan --n 900 --seed 1 | tail -n 1
"$T" label simulate --pool "$HERE/pools/unbiased.yaml" | tail -n 1
"$T" data export --out exports/clean | sed -n 1p
"$T" rm train --data exports/clean --out models/rm --epochs 5 | tail -n 2 | sed -n 1p
"$T" rm eval models/rm --gate --out evals/rm > evals-rm.log 2>&1 || { cat evals-rm.log; exit 1; }
set +e
"$T" rl run --reward-model models/rm > rl-C.log 2>&1; echo "C exit $?"
set -e
RUN_C=$(latest_run "$UNBIASED")
"$PY" "$HERE/rl_curves.py" "$RUN_A" "$RUN_B" "$RUN_C" --every 25
