#!/usr/bin/env bash
# D-PSGD round time over TCP vs its parts, all measured in one run on this machine:
#   (a) the median local step of mlp (batch 32, one thread)  -- rumor bench step
#   (b) the median gloo ring-gossip round for a vector of the model's size (101,770 floats,
#       8 processes)                                        -- ../shared/bench/gloo_gossip.py
#   (c) rumor's median D-PSGD round on ring8 over TCP (8 processes, one local step per round)
# Claim: (c) <= 1.25 x ((a) + (b)). Needs tools/install-bench-deps.sh (python3-torch).
set -euo pipefail
cd "$(dirname "$0")/../.."
R=${RUMOR:-build/release/rumor}
OUT=${OUT:-runs/dpsgd-round}
mkdir -p "$OUT"
step=$($R bench step --json --models mlp --seconds 3 --log-level off)
gloo=$(/usr/bin/python3 ../shared/bench/gloo_gossip.py --ns 8 --ds 101770 --patterns ring \
       --rounds 100 --budget 20 --out "$OUT/gloo.jsonl" | grep '^{' | tail -1)
$R launch experiments/dpsgd-round/config.json --no-progress --log-level warn > "$OUT/launch.txt"
run_dir=$(grep -o 'results *[^ ]*' "$OUT/launch.txt" | awk '{print $2}')
/usr/bin/python3 - "$step" "$gloo" "$run_dir/summary.json" <<'PY'
import json, sys
step = json.loads(sys.argv[1]); gloo = json.loads(sys.argv[2]); summ = json.load(open(sys.argv[3]))
step_ms = 1000.0 / [m for m in step["models"] if m["model"] == "mlp"][0]["steps_per_s"]
gloo_ms = gloo["median_ms"]
rumor_ms = summ["round_ms_median"]
print(json.dumps({"step_ms": step_ms, "gloo_ring_ms": gloo_ms,
                  "gloo_ring_back_to_back_ms": gloo.get("b2b_mean_ms"),
                  "rumor_dpsgd_round_ms": rumor_ms, "rumor_dpsgd_round_mean_ms": summ["round_ms_mean"],
                  "bound_ms": 1.25 * (step_ms + gloo_ms),
                  "ratio_to_sum": rumor_ms / (step_ms + gloo_ms),
                  "final_test_acc": summ["final"].get("test_acc_mean")}, indent=2))
PY
