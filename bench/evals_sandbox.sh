#!/usr/bin/env bash
# Issue 8's eval acceptance on the RL acceptance runs (after bench/rm_sandbox.sh and bench/rl_sandbox.sh):
#
#     bench/evals_sandbox.sh /tmp/rm-sandbox [/tmp/rl-unbiased]
#
# Writes the sandbox suites (held-out prompts, PER_DIM cases per dimension, default 250) in both projects, evaluates
# the SFT policy and every RL checkpoint with the gold and programmatic graders (3 samples per case),
# and compares each checkpoint with SFT: A (length-biased RM, default KL), B (same RM, β 1e-4)
# and C (unbiased pool, default KL). `compare` exits 3 when a critical dimension regressed.
set -uo pipefail
RM_DIR=$(cd "${1:?usage: bench/evals_sandbox.sh RM_SANDBOX_DIR UNBIASED_DIR}" && pwd)
UNBIASED=${2:-}
[ -n "$UNBIASED" ] && UNBIASED=$(cd "$UNBIASED" && pwd)
# 250 cases a dimension (of the ~300 the default world holds out): at 100, the paired interval is
# about ±0.05 wide, and the hacked run's safety drop of 0.05 sat on its edge (issue 8).
PER_DIM=${PER_DIM:-250}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(dirname "$(command -v tether || echo "$HERE/../.venv/bin/tether")")
T="$BIN/tether"
PY="$BIN/python"
checkpoints() {
    "$PY" - "$1" <<'PY'
import sys
from pathlib import Path
from tether.project import Project
from tether.store import list_artifacts
p = Project.open(Path(sys.argv[1]))
with p.store.session() as s:
    for a in list_artifacts(s, project_id=p.project_id, kind="rl_checkpoint"):
        print(a.id)
PY
}
latest_run() {
    "$PY" - "$1" "$2" <<'PY'
import sys
from pathlib import Path
from tether.evals.history import latest_run_of
from tether.project import Project
from tether.store import latest_artifact
p = Project.open(Path(sys.argv[1]))
ref = sys.argv[2]
if ref == "sft":
    with p.store.session() as s:
        ref = latest_artifact(s, project_id=p.project_id, kind="policy").id
print(latest_run_of(p, ref).artifact_id)
PY
}
for dir in "$RM_DIR" ${UNBIASED:+"$UNBIASED"}; do
    cd "$dir"
    echo "== $dir"
    "$T" eval init-suites --per-dimension "$PER_DIM" --force | tail -n 1
    "$T" eval run --checkpoint sft > eval-sft.log 2>&1 || { tail eval-sft.log; exit 1; }
    SFT_RUN=$(latest_run "$dir" sft)
    for ckpt in $(checkpoints "$dir"); do
        "$T" eval run --checkpoint "$ckpt" > "eval-$ckpt.log" 2>&1 || { tail "eval-$ckpt.log"; exit 1; }
        RUN=$(latest_run "$dir" "$ckpt")
        echo "-- $ckpt vs SFT"
        "$T" eval compare "$SFT_RUN" "$RUN"
        echo "compare exit $?"
    done
done
