#!/usr/bin/env bash
# adpsgd over TCP, N times (default 20): 8 peers on a ring, 40 steps each, seeds 1..N, node 3
# four times slower in every other run. A run passes when `rumor launch` exits 0 and the
# exchanges the nodes made equal those they served (none lost or doubled). A deadlock would
# end in an error naming the peer after network.round_timeout_s (20 s here).
# usage: experiments/async/tcp_repeat.sh [N] [RUMOR] [FIRST_SEED]
set -euo pipefail
n=${1:-20}
rumor=${2:-build/release/rumor}
first=${3:-1}
dir=$(mktemp -d)
cat > "$dir/small.json" <<JSON
{"name": "adpsgd-tcp", "topology": {"gen": "ring", "nodes": 8}, "method": {"name": "adpsgd"},
 "model": {"name": "logreg"}, "data": {"dataset": "blobs", "train_size": 800, "test_size": 200},
 "rounds": 40, "eval": {"every": 10},
 "network": {"connect_timeout_s": 20, "round_timeout_s": 20}, "output": {"dir": "$dir/runs"}}
JSON
pass=0
for ((s = first; s < first + n; s++)); do
  slow=$([[ $((s % 2)) == 0 ]] && echo '[3]' || echo '[]')
  start=$(date +%s.%N)
  if "$rumor" launch "$dir/small.json" --no-progress --set seed=$s --set "faults.slow_nodes=$slow" \
      > "$dir/run-$s.log" 2>&1; then
    run=$(ls -d "$dir"/runs/adpsgd-tcp-s$s-* | head -1)
    counts=$(python3 -c "
import json,sys,glob
m=s=0
for f in glob.glob('$run/node-*.jsonl'):
    j=json.loads(open(f).read().splitlines()[-1]); m+=j['pair_exchanges']; s+=j['pair_served']
print(m, s)")
    read -r made served <<< "$counts"
    ok=$([[ $made == "$served" ]] && echo ok || echo MISMATCH)
    [[ $ok == ok ]] && pass=$((pass + 1))
  else
    made=- served=- ok="FAILED (see $dir/run-$s.log)"
  fi
  printf 'run %2d  slow %-3s  %5.1f s  exchanges made %s served %s  %s\n' "$s" "$slow" \
    "$(echo "$(date +%s.%N) - $start" | bc)" "$made" "$served" "$ok"
done
echo "$pass of $n runs passed"
[[ $pass == "$n" ]]
