#!/usr/bin/env bash
# Targeted relabeling after a failed gate, on the sandbox with a planted confidence-biased pool:
#
#     bench/remediation_sandbox.sh /tmp/remediation         # about 6 minutes on 2 cores
#     POOL=bench/pools/unbiased.yaml SEED=3 bench/remediation_sandbox.sh /tmp/r   # any pool, any seed
#
# (1) a sandbox project and its world, its spec deciding probes strictly (`reward_model.gate_policy:
# strict`: a bias whose 95% interval reaches the bar fails; the demo keeps the default `interval`);
# (2) one loop iteration whose collect step labels with POOL
# (default bench/pools/confident.yaml: a third of the raters take confident phrasing for
# competence); (3) every gate attempt of that iteration: the probes' mean reward deltas with their
# 95% intervals, the failures, the targeted batch planned, and the raters' edit preference on the
# counterfactual pairs. The loop's short RL run only shows that a passed gate goes on. Figures land
# in DIR/attempts.txt; the loop's own exit code (0, or 3 when the gate still fails) is printed last.
set -uo pipefail
DIR=${1:?usage: bench/remediation_sandbox.sh DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
POOL=${POOL:-$HERE/pools/confident.yaml}
SEED=${SEED:-0}
BIN=$(dirname "$(command -v tether || echo "$HERE/../.venv/bin/tether")")
T="$BIN/tether"
PY="$BIN/python"
rm -rf "$DIR" && mkdir -p "$(dirname "$DIR")"
"$T" init "$DIR" --template sandbox >/dev/null || exit 1
cd "$DIR" || exit 1
"$PY" - <<'PY'
from pathlib import Path

import yaml

spec = yaml.safe_load(Path("spec.yaml").read_text(encoding="utf-8"))
spec["reward_model"]["gate_policy"] = "strict"
Path("spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
PY
"$T" sandbox build --seed "$SEED" | tail -n 1
"$T" eval init-suites --per-dimension 60 | tail -n 1
"$T" loop --iterations 1 --first-pairs 6400 --rl-steps 30 --redteam-prompts 0 --pool "$POOL" --seed "$SEED"
CODE=$?
"$PY" - <<'PY' | tee attempts.txt
from pathlib import Path

from tether.feedback.loop.results import GateResult
from tether.project import Project
from tether.store.iterations import list_iterations

project = Project.open(Path("."))
with project.store.session() as session:
    (iteration,) = list_iterations(session, project_id=project.project_id)
gate = GateResult.from_dict(iteration.results.get("gate"))
for a in gate.attempts:
    probes = ", ".join(
        f"{p.name} {p.mean_delta:+.3f} [{p.low:+.3f}, {p.high:+.3f}]"
        for p in a.probes
        if p.mean_delta is not None and p.low is not None and p.high is not None and p.name != "position"
    )
    print(f"attempt {a.attempt}: {'passed' if a.passed else 'FAILED'}, overall accuracy {a.overall.value:.3f}")
    print(f"  probes: {probes}")
    for failure in a.failures:
        print(f"  failed: {failure}")
    for e in a.edit_preferences:
        print(f"  raters chose the {e.probe} edit in {e.edited_chosen} of {e.pairs} counterfactual pairs ({e.ties} ties)")
    if a.remediation is not None:
        targets = ", ".join(f"{k} {v}" for k, v in a.remediation.by_target.items())
        print(f"  then: targeted batch {a.remediation.batch}, {a.remediation.tasks} tasks ({targets})")
    else:
        print(f"  then: {a.action}" + (f" ({a.stop_reason})" if a.stop_reason else ""))
print(f"iteration 1: {iteration.status}")
PY
echo "tether loop exit code: $CODE"
