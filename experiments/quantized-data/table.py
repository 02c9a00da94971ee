#!/usr/bin/env python3
"""Table for experiments/quantized-data: accuracy, the method bytes split three ways, and the
bytes each cell needed to first reach choco's final accuracy.

usage: table.py results/grid/compare.json [more compare.json ...] > results/table.md
Each seed needs a cell whose group contains "choco" (the reference for that seed). Byte splits
come from the runs' node-<i>.jsonl (qd_bytes_*), so the runs/ folders must still exist.
"""
import glob
import json
import os
import sys


def split(run_dir):
    tot = {"qd_bytes_samples": 0, "qd_bytes_refine": 0, "qd_bytes_model": 0}
    for f in glob.glob(run_dir + "/node-*.jsonl"):
        last = json.loads(open(f).read().strip().split("\n")[-1])
        for k in tot:
            tot[k] += last.get(k, 0)
    return {k: v / 1e6 for k, v in tot.items()}


def main(paths):
    docs = [json.load(open(p)) for p in paths]
    # Reference per seed (the seed also draws the partition): that seed's choco cell.
    ref = {c["seed"]: c for d in docs for c in d["cells"] if "choco" in c["group"]}
    for seed, c in sorted(ref.items()):
        print(f"Reference, seed {seed}: choco final mean accuracy "
              f"{c['final']['test_acc_mean']:.4f} with {c['mb_sent']:.1f} MB.")
    print()
    print("| cell | seed | final acc | acc 50 rounds earlier | averaged model | MB total | "
          "MB samples / refine / model gossip | MB to reach choco's final acc | choco MB / that |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path, doc in zip(paths, docs):
        for c in doc["cells"]:
            if c["seed"] not in ref:
                continue
            target = ref[c["seed"]]["final"]["test_acc_mean"]
            choco_mb = ref[c["seed"]]["mb_sent"]
            curve = c["curve"]
            # The evaluation before the last: 50 rounds earlier, mid-cycle for avg/100 cells.
            mid = curve[-2]["test_acc"] if len(curve) > 1 else float("nan")
            first = next((p for p in curve if p.get("test_acc", 0) >= target), None)
            # run_dir is relative to where `rumor compare` ran; runs/ sits beside compare.json.
            s = split(os.path.join(os.path.dirname(path), "runs", os.path.basename(c["run_dir"])))
            qd = s["qd_bytes_samples"] + s["qd_bytes_refine"] + s["qd_bytes_model"]
            sp = (f"{s['qd_bytes_samples']:.1f} / {s['qd_bytes_refine']:.1f} / "
                  f"{s['qd_bytes_model']:.1f}" if qd else "-")
            reach = (f"{first['mb_sent']:.1f} (round {first['round'] + 1})" if first else "not reached")
            ratio = f"{choco_mb / first['mb_sent']:.1f}x" if first else "-"
            label = c['group'].split('=', 1)[-1].replace('|', '\\|')
            print(f"| {label} | {c['seed']} | {c['final']['test_acc_mean']:.4f} | "
                  f"{mid:.4f} | {c['final'].get('avg_model_acc', float('nan')):.4f} | "
                  f"{c['mb_sent']:.1f} | {sp} | {reach} | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1:])
