"""Per run directory: how much of ||x - hat x||^2 CHOCO's payloads removed (choco_kept, mean
and median over nodes and rounds) and how many sends were the sketch's fallback (messages
under 60% of the run's largest one).

    python3 experiments/payloads/kept.py experiments/payloads/results/grid/runs/*/
"""
import glob
import json
import os
import statistics
import sys


def summarize(run):
    cfg = json.load(open(os.path.join(run, "config.json")))
    kept, per_msg = [], []
    for f in sorted(glob.glob(os.path.join(run, "node-*.jsonl"))):
        prev_b = prev_m = 0
        for line in open(f):
            rec = json.loads(line)
            if "choco_kept" in rec:
                kept.append(rec["choco_kept"])
            b, m = rec.get("bytes_sent", 0), rec.get("msgs_sent", 0)
            if m > prev_m:  # cumulative counters: this round's bytes per message
                per_msg.append((b - prev_b) / (m - prev_m))
            prev_b, prev_m = b, m
    if not kept:
        return f"{cfg['codec']} ({cfg['method']['name']}): no payloads"
    big = max(per_msg)
    small = sum(1 for x in per_msg if x < 0.6 * big)
    return (f"{cfg['codec']} gamma {cfg['method'].get('gamma')}: choco_kept mean "
            f"{statistics.mean(kept):.5f} median {statistics.median(kept):.5f}; bytes per "
            f"message max {big:.0f} mean {statistics.mean(per_msg):.0f}; small sends "
            f"{small}/{len(per_msg)} ({100.0 * small / len(per_msg):.1f}%)")


for run_dir in sys.argv[1:]:
    print(summarize(run_dir))
