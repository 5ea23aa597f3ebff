#!/usr/bin/env bash
# The planted failures of issues 6 and 7, rerun on a finished demo project (about 6 minutes):
#
#     tether demo --dir /tmp/demo --fresh && bench/planted_sandbox.sh /tmp/demo
#
# (1) the first iteration's export with every safety training label flipped, a reward model on it
# and the gate on the same held-out pairs: it must fail, naming safety; (2) an RL run against the
# first iteration's gated reward model with a fixed KL coefficient near zero (1e-4): its monitors
# must flag it and stop it (exit 3). Figures land in DIR/planted.txt.
set -uo pipefail
DIR=$(cd "${1:?usage: bench/planted_sandbox.sh DEMO_DIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(dirname "$(command -v tether || echo "$HERE/../.venv/bin/tether")")
T="$BIN/tether"
PY="$BIN/python"
cd "$DIR" || exit 1
read -r EXPORT RM < <("$PY" - <<'PY'
from pathlib import Path

from tether.feedback.loop.results import CollectResult, RewardResult
from tether.project import Project
from tether.store import get_artifact
from tether.store.iterations import list_iterations

project = Project.open(Path("."))
with project.store.session() as session:
    first = list_iterations(session, project_id=project.project_id)[0]
    export = get_artifact(session, artifact_id=str(CollectResult.from_dict(first.results["collect"]).export))
print(export.path, RewardResult.from_dict(first.results["reward"]).artifact)
PY
)
{
    "$PY" "$HERE/rm_variants.py" flip --base "$EXPORT" --dimension safety --out exports/flipped
    "$T" rm train --data exports/flipped --out models/rm-flipped --epochs 5 | tail -n 2 | sed -n 1p
    "$T" rm eval models/rm-flipped --gate --data "$EXPORT" --out evals/flipped > evals-flipped.log 2>&1
    echo "flipped-safety gate exit $? (3: failed)"
    grep -A8 "gate failed" evals-flipped.log
    "$T" rl run --reward-model "$RM" --kl-coef 0.0001 --fixed-kl --steps 200 > rl-tiny-kl.log 2>&1
    echo "tiny-KL run exit $? (3: stopped by a critical alert)"
    grep -E "^run |alerts:|stopped" rl-tiny-kl.log | tail -n 4
    "$T" rl runs | tail -n 4
} 2>&1 | tee planted.txt
