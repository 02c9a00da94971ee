#!/bin/bash
# Sample traffic vs model size: qdata (top and quantile rules, with sign refinement) and
# dpsgd with mlp hidden 128 and 1024, 100 rounds on ring16, Fashion-MNIST alpha 0.1.
# Prints bytes per node per round, split into samples / refinement / model gossip.
set -euo pipefail
RUMOR=${RUMOR:-rumor}
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/runs/model-size}
mkdir -p "$out"
run() {  # label, overrides...
  local label=$1; shift
  local log
  log=$("$RUMOR" launch "$here/base.json" --inprocess --no-progress --set rounds=100 \
        --set eval.every=100 --set output.dir="$out" "$@")
  local dir
  dir=$(echo "$log" | awk '/results/ {print $2}')
  python3 - "$dir" "$label" <<'PY'
import glob, json, sys
d, label = sys.argv[1], sys.argv[2]
keys = ["bytes_sent", "qd_bytes_samples", "qd_bytes_refine", "qd_bytes_model"]
tot = dict.fromkeys(keys, 0)
nodes = 0
for f in glob.glob(d + "/node-*.jsonl"):
    last = json.loads(open(f).read().strip().split("\n")[-1])
    rounds = last["round"] + 1
    nodes += 1
    for k in keys:
        tot[k] += last.get(k, 0)
per = {k: v / nodes / rounds for k, v in tot.items()}
print(f"| {label} | {per['qd_bytes_samples']:.1f} | {per['qd_bytes_refine']:.1f} | "
      f"{per['qd_bytes_model']:.1f} | {per['bytes_sent']:.1f} |")
PY
}
echo "| run | sample B/node/round | refinement B/node/round | model-gossip B/node/round | all method B/node/round |"
echo "|---|---|---|---|---|"
Q=(--set method.name=qdata --set codec=qsgd:8:biased --set method.gossip_every=100 --set method.bits=2)
for h in 128 1024; do
  run "qdata top, hidden $h" "${Q[@]}" --set "model.hidden=[$h]"
  run "qdata quantile 0.8 + sign refinement, hidden $h" "${Q[@]}" --set "model.hidden=[$h]" \
      --set method.importance=quantile --set method.refine=sign
  run "dpsgd fp32, hidden $h" --set method.name=dpsgd --set "model.hidden=[$h]"
done
