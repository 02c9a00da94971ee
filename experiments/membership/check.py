#!/usr/bin/env python3
"""Acceptance figures of a membership run directory: per round, the push-sum weight summed over
the nodes that ran it (largest deviation from the nodes started with), and the last test
accuracy of every node present at the end.

usage: check.py RUN_DIR [STATIC_RUN_DIR]
       check.py --same RUN_DIR_A RUN_DIR_B   (every metrics line equal but for wall time)
"""
import json
import os
import sys
from collections import defaultdict


def lines(run):
    out = {}
    for name in os.listdir(run):
        if name.startswith("node-") and name.endswith(".jsonl"):
            with open(os.path.join(run, name)) as f:
                out[int(name[5:-6])] = [json.loads(l) for l in f if l.strip()]
    return out


def final_accuracy(nodes, rounds):
    acc = {}
    for i, ls in nodes.items():
        if ls and ls[-1]["round"] + 1 == rounds:
            evals = [l for l in ls if "test_acc" in l]
            acc[i] = evals[-1]["test_acc"]
    return acc


def same(a, b):
    la, lb = lines(a), lines(b)
    wall = ("time_s",)
    strip = lambda ls: [{k: v for k, v in l.items() if k not in wall} for l in ls]
    n = sum(len(v) for v in la.values())
    diff = [i for i in set(la) | set(lb) if strip(la.get(i, [])) != strip(lb.get(i, []))]
    print(f"{a} vs {b}: {n} metrics lines, " +
          ("identical but for time_s" if not diff else f"nodes {sorted(diff)} differ"))
    return not diff


def main():
    if sys.argv[1] == "--same":
        sys.exit(0 if same(sys.argv[2], sys.argv[3]) else 1)
    run = sys.argv[1]
    cfg = json.load(open(os.path.join(run, "config.json")))
    rounds = cfg["rounds"]
    nodes = lines(run)
    weight = defaultdict(float)
    for ls in nodes.values():
        for l in ls:
            if "ps_weight" in l:
                weight[l["round"]] += l["ps_weight"]
    # Rounds a node sat out in between (paused) hold its weight outside the sum: left out.
    gaps = set()
    for ls in nodes.values():
        for a, b in zip(ls, ls[1:]):
            gaps.update(range(a["round"] + 1, b["round"]))
            if b["round"] > a["round"] + 1:
                gaps.add(a["round"])  # its last line before the pause: others may be ahead
    # Over TCP a stopped node's links may drop: what was in flight then is recovered by the
    # running sums a round or two later. Those rounds are reported apart.
    stopped = set()
    for i in nodes:
        try:
            end = json.load(open(os.path.join(run, f"node-{i}.end.json")))
        except OSError:
            continue
        for e in end.get("stopped", []):
            stopped.update(range(e["round"] - 1, e["round"] + 3))  # 0-based round e-1 on
    in_flight = {r: w for r, w in weight.items() if r in stopped and r not in gaps}
    weight = {r: w for r, w in weight.items() if r not in gaps and r not in stopped}
    acc = final_accuracy(nodes, rounds)
    if not acc:
        sys.exit(f"{run}: no node has a test accuracy of the last round (run not finished?)")
    mean = sum(acc.values()) / len(acc)
    print(f"{run}: {len(acc)} nodes at the end, final mean accuracy {mean:.4f}, "
          f"min {min(acc.values()):.4f} (node {min(acc, key=acc.get)}), max {max(acc.values()):.4f}")
    if weight:
        started = sum(1 for n in cfg["topology"]["nodes"] if not n.get("standby", False))
        devs = {r: abs(w - started) for r, w in weight.items()}
        worst = max(devs, key=devs.get)
        print(f"  push-sum weight over the nodes of each round: largest deviation from {started} "
              f"{devs[worst]:.3g} (round {worst}); {len(devs)} rounds, {len(gaps)} with a node paused left out")
        if in_flight:
            lows = {r: round(w, 4) for r, w in sorted(in_flight.items()) if abs(w - started) > 1e-9}
            print(f"  rounds around a stopped node ({len(in_flight)}): below {started} by what was in "
                  f"flight in {lows if lows else 'none'}")
    if len(sys.argv) > 2:
        s_nodes = lines(sys.argv[2])
        s_acc = final_accuracy(s_nodes, rounds)
        s_mean = sum(s_acc.values()) / len(s_acc)
        print(f"  static run: final mean accuracy {s_mean:.4f}; difference {100 * (mean - s_mean):+.2f} points")


main()
