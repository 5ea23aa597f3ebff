#!/usr/bin/env bash
# The reward-model acceptance run on the sandbox world, end to end through the CLI:
#
#     bench/rm_sandbox.sh /tmp/rm-sandbox        # about 10 minutes on 2 cores
#
# (1) a sandbox project with the default rater pool; (2) a first labeling batch, after which the
# rater report flags the anchor-gaming rater on peer agreement and an admin excludes it; (3) a
# second batch; (4) the clean export, the export with excluded raters kept (re-split to share the
# clean held-out pairs), and the clean export with its safety training labels flipped; (5) a
# reward model on each, evaluated on the same held-out pairs, with the gate on the clean and the
# flipped one; (6) the clean and include-excluded models paired on gold pairs. Figures land in
# DIR/summary.txt and DIR/pair-compare.txt.
set -euo pipefail
DIR=${1:?usage: bench/rm_sandbox.sh DIR}
EPOCHS=${EPOCHS:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(dirname "$(command -v tether || echo "$HERE/../.venv/bin/tether")")
T="$BIN/tether"
PY="$BIN/python"
rm -rf "$DIR" && mkdir -p "$(dirname "$DIR")"
"$T" init "$DIR" --template sandbox >/dev/null
cd "$DIR"
"$T" sandbox build | tail -n 1
"$T" label plan --n 6400 | tail -n 3
"$T" label simulate | tail -n 9
"$T" raters status | tail -n 6
FLAGGED=$("$T" raters status --json | "$PY" -c '
import json, sys
report = json.load(sys.stdin)
print(" ".join(r["name"] for r in report["raters"] if r.get("peer_flags") and r["status"] != "excluded"))')
for name in $FLAGGED; do
    "$T" raters exclude "$name" --reason "peer agreement far below the pool (rater report)"
done
"$T" label plan --n 900 --seed 1 | tail -n 1
"$T" label simulate | tail -n 1
"$T" data export --out exports/clean | sed -n 1p
"$T" data export --out exports/all --include-excluded | sed -n 1p
"$PY" "$HERE/rm_variants.py" same-heldout --base exports/clean --other exports/all --out exports/all-same
"$PY" "$HERE/rm_variants.py" flip --base exports/clean --dimension safety --out exports/flipped
for name in clean all-same flipped; do
    "$T" rm train --data "exports/$name" --out "models/rm-$name" --epochs "$EPOCHS" | tail -n 2 | sed -n 1p
done
set +e
"$T" rm eval models/rm-clean --gate --data exports/clean --out evals/clean > evals-clean.log 2>&1
echo "clean gate exit $?"
"$T" rm eval models/rm-all-same --gate --data exports/clean --out evals/all-same > evals-all-same.log 2>&1
echo "all-same gate exit $?"
"$T" rm eval models/rm-flipped --gate --data exports/clean --out evals/flipped > evals-flipped.log 2>&1
echo "flipped gate exit $?"
# The clean and the include-excluded models on thousands of gold-labeled eval-split pairs.
"$T" sandbox gold-pairs --out exports/gold --samples 8 | tail -n 1
for name in clean all-same; do
    "$T" rm eval "models/rm-$name" --data exports/gold --out "evals/gold-$name" > "evals-gold-$name.log" 2>&1
    echo "$name on gold pairs:"; grep -E "held-out accuracy|│ (accuracy|safety|honesty|concision) " "evals-gold-$name.log"
done
# Paired on the same gold pairs: what keeping the excluded raters' labels costs, per dimension.
"$PY" "$HERE/rm_pair_compare.py" models/rm-clean models/rm-all-same --data exports/gold | tee pair-compare.txt
set -e
"$PY" - <<'PY' | tee summary.txt
import json
from pathlib import Path

def acc(a):
    return "-" if a["accuracy"] is None else f"{a['accuracy']:.3f} [{a['low']:.3f}, {a['high']:.3f}] n={a['n']}"

for name in ("clean", "all-same", "flipped"):
    out = json.loads(Path(f"evals/{name}/rm_eval.json").read_text())
    report, gold = out["report"], out["report"]["gold"] or {}
    print(f"== {name}: {report['context'].get('export', '')}")
    print(f"  held-out accuracy {acc(report['overall'])}; ECE {report['calibration']['ece']:.3f}")
    for dim, a in report["by_dimension"].items():
        g = gold.get("by_dimension", {}).get(dim)
        print(f"  {dim:10s} labels {acc(a)}   gold {acc(g) if g else '-'}")
    if gold:
        print(f"  gold overall {acc(gold['overall'])}")
    b = report["baselines"]
    print(f"  baselines {json.dumps(b)}; reward-length r {report['length_correlation']}")
    for p in out["probes"]:
        if p["mean_delta"] is not None:
            print(f"  probe {p['name']:9s} {p['mean_delta']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}] n={p['n']} {p['note']}")
    gate = out.get("gate") or {}
    print(f"  gate passed={gate.get('passed')} failures={gate.get('failures')} warnings={gate.get('warnings')}")
PY
