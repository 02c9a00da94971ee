#!/usr/bin/env bash
# D-PSGD round time over TCP against its parts, measured side by side in each repeat:
#   (a) the median local step of mlp 784-128-10 (batch 32, one thread)  -- rumor bench step
#   (b) the median gloo ring-gossip round for a vector of the model's size (101,770 floats,
#       8 processes)                                        -- bench/gloo_gossip.py
#   (c) rumor's median D-PSGD round on ring8 over TCP (8 processes, one local step per round)
# Claim: (c) <= 1.25 x ((a) + (b)). One JSON line per repeat, then the medians over repeats.
# Usage: experiments/dpsgd-round/run.sh   (env: REPEATS=5, RUMOR=build/release/rumor,
#        OUT=runs/dpsgd-round, PYTHON=/usr/bin/python3 with python3-torch)
set -euo pipefail
cd "$(dirname "$0")/../.."
R=${RUMOR:-build/release/rumor}
OUT=${OUT:-runs/dpsgd-round}
PY=${PYTHON:-/usr/bin/python3}
REPEATS=${REPEATS:-5}
mkdir -p "$OUT"
: >"$OUT/repeats.jsonl"
for i in $(seq "$REPEATS"); do
  step=$($R bench step --json --models mlp --seconds 3 --log-level off)
  gloo=$($PY bench/gloo_gossip.py --nodes 8 --floats 101770 --patterns ring --rounds 100 \
    --budget 20 --out "$OUT/gloo.jsonl" | grep '^{' | tail -1)
  # On a shared machine another run may take a port between launch's check and a peer's
  # bind: try a failed launch again, at most twice, and say so.
  for attempt in 1 2 3; do
    rm -rf "$OUT/rep$i"
    $R launch experiments/dpsgd-round/config.json --no-progress --log-level warn \
      --set output.dir="$OUT/rep$i" >"$OUT/launch-$i.txt" 2>&1 && break
    echo "run.sh: launch of repeat $i failed (attempt $attempt): $(tail -1 "$OUT/launch-$i.txt")" >&2
    [[ $attempt == 3 ]] && exit 1
  done
  run_dir=$(ls -d "$OUT/rep$i"/*/ | head -1)
  $PY - "$step" "$gloo" "$run_dir/summary.json" <<'PY' | tee -a "$OUT/repeats.jsonl"
import json, sys
step = json.loads(sys.argv[1]); gloo = json.loads(sys.argv[2]); summ = json.load(open(sys.argv[3]))
step_ms = 1000.0 / [m for m in step["models"] if m["model"] == "mlp"][0]["steps_per_s"]
rumor_ms = summ["round_ms_median"]
print(json.dumps({"step_ms": round(step_ms, 4), "gloo_ring_ms": gloo["median_ms"],
                  "gloo_ring_back_to_back_ms": gloo["back_to_back_ms"],
                  "rumor_dpsgd_round_ms": rumor_ms, "rumor_dpsgd_round_mean_ms": summ["round_ms_mean"],
                  "ratio_to_sum": round(rumor_ms / (step_ms + gloo["median_ms"]), 4),
                  "final_test_acc": summ["final"].get("test_acc_mean")}))
PY
done
$PY - "$OUT/repeats.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if rows[0][k] is not None}
med["repeats"] = len(rows)
med["claim_holds"] = med["ratio_to_sum"] <= 1.25
print(json.dumps({"median": med}, indent=2))
PY
