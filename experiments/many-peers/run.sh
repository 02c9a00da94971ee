#!/usr/bin/env bash
# Many logreg peers in one process: 100 rounds of SGP on the one-peer exponential graph and on
# the ring, for 1,000 / 3,000 / 10,000 peers (IID partition of Fashion-MNIST: 60, 20 and 6
# samples a peer). Per run: the memory --dry-run announces, peak RSS and wall time of the
# whole command (/usr/bin/time -v), the run's own median round and final accuracy. One JSON
# line per run, then a Markdown table.
# Usage: experiments/many-peers/run.sh   (env: RUMOR=build/release/rumor, OUT=runs/many-peers,
#        NODES="1000 3000 10000", GRAPHS="exponential ring", MODEL=logreg)
set -euo pipefail
cd "$(dirname "$0")/../.."
R=${RUMOR:-build/release/rumor}
OUT=${OUT:-runs/many-peers}
NODES=${NODES:-1000 3000 10000}
GRAPHS=${GRAPHS:-exponential ring}
MODEL=${MODEL:-logreg}
CONFIG=experiments/many-peers/config.json
mkdir -p "$OUT"
: >"$OUT/runs.jsonl"
for g in $GRAPHS; do
  for n in $NODES; do
    sets=(--set topology.gen="$g" --set topology.nodes="$n" --set model.name="$MODEL"
      --set output.dir="$OUT/$g-$n")
    plan=$($R launch "$CONFIG" --inprocess --dry-run "${sets[@]}" | grep '^memory per peer')
    load=$(cut -d' ' -f1 /proc/loadavg)
    /usr/bin/time -v "$R" launch "$CONFIG" --inprocess --no-progress "${sets[@]}" \
      >"$OUT/$g-$n.txt" 2>"$OUT/$g-$n.time"
    python3 - "$g" "$n" "$plan" "$load" "$OUT/$g-$n" "$OUT/$g-$n.time" <<'PY' |
import glob, json, re, sys
g, n, plan, load, out, timef = sys.argv[1:]
t = open(timef).read()
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
el = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", t).group(1)
secs = sum(float(x) * 60 ** i for i, x in enumerate(reversed(el.split(":"))))
s = json.load(open(glob.glob(out + "/*/summary.json")[0]))
print(json.dumps({"graph": g, "peers": int(n), "load_before": float(load),
                  "dry_run_mb_per_peer": float(re.search(r"per peer ([\d.]+) MB", plan).group(1)),
                  "peak_rss_gb": round(rss_kb / 1e6, 3), "command_s": round(secs, 1),
                  "run_wall_s": s.get("wall_time_s"), "round_ms_median": s.get("round_ms_median"),
                  "test_acc_mean": s["final"].get("test_acc_mean")}))
PY
      tee -a "$OUT/runs.jsonl"
  done
done
python3 - "$OUT/runs.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| graph | peers | dry-run MB/peer | peak RSS GB | RSS/peer MB | command s | median round ms | test acc | load |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['graph']} | {r['peers']} | {r['dry_run_mb_per_peer']:.2f} | {r['peak_rss_gb']:.2f} | "
          f"{1000 * r['peak_rss_gb'] / r['peers']:.3f} | {r['command_s']:.0f} | {r['round_ms_median']:.0f} | "
          f"{r['test_acc_mean']:.4f} | {r['load_before']:.0f} |")
PY
