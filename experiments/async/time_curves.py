#!/usr/bin/env python3
"""Accuracy against simulated time from every node's own evaluations.

usage: time_curves.py RESULTS_DIR [TARGET]

RESULTS_DIR is what `rumor compare grid.json -o RESULTS_DIR` wrote (compare.json and runs/).
A synchronous run's curve in compare.json is per round, timed by the slowest node's clock;
an asynchronous run has no rounds (each node counts its own steps), so both are put on one
footing here: at simulated time t, the accuracy of a run is the mean over nodes of each
node's latest test accuracy evaluated by t (once every node has one). Writes
RESULTS_DIR/time_curves.json (compare.json with these curves, points every 0.5 s), prints a
markdown table (time to TARGET, default the grid's, per cell and the mean over seeds), and
draws RESULTS_DIR/accuracy_vs_time.png with tools/plot_compare.py.
"""
import json
import os
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
from plot_compare import FIGURES, build_view, small_multiples  # noqa: E402

STEP_S = 0.5


def node_evals(run_dir):
    """{node: [(sim_time_s, test_acc)]} and the last line of each node."""
    evals, last = {}, {}
    for name in sorted(os.listdir(run_dir)):
        if not (name.startswith("node-") and name.endswith(".jsonl")):
            continue
        node = int(name[5:-6])
        evals[node] = []
        with open(os.path.join(run_dir, name)) as f:
            for line in f:
                j = json.loads(line)
                last[node] = j
                if "test_acc" in j:
                    evals[node].append((j["sim_time_s"], j["test_acc"]))
    return evals, last


def time_curve(evals):
    """[(t, mean over nodes of the latest accuracy by t)] at every evaluation time."""
    events = sorted((t, node, acc) for node, pts in evals.items() for t, acc in pts)
    latest, out = {}, []
    for t, node, acc in events:
        latest[node] = acc
        if len(latest) == len(evals):
            out.append((t, sum(latest.values()) / len(latest)))
    return out


def sampled(curve):
    """The curve at 0.5 s steps (the value holding then), as compare.json curve points."""
    points, k, i = [], 0, 0
    while curve and k * STEP_S <= curve[-1][0] + STEP_S:
        t = k * STEP_S
        while i + 1 < len(curve) and curve[i + 1][0] <= t:
            i += 1
        if curve[0][0] <= t:
            points.append({"round": k, "sim_time_s": t, "test_acc": curve[i][1]})
        k += 1
    return points


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    results = sys.argv[1]
    with open(os.path.join(results, "compare.json")) as f:
        doc = json.load(f)
    target = float(sys.argv[2]) if len(sys.argv) > 2 else doc.get("target_acc", 0.8)
    rows = defaultdict(list)
    for cell in doc.get("cells") or []:
        evals, last = node_evals(os.path.join(results, "runs", cell["run_id"]))
        curve = time_curve(evals)
        cell["curve"] = sampled(curve)
        reached = next((t for t, acc in curve if acc >= target), None)
        final = sum(j["test_acc"] for j in last.values()) / len(last)
        end = max(j["sim_time_s"] for j in last.values())
        fast_end = sorted(j["sim_time_s"] for j in last.values())[len(last) // 2]
        steps = sum(j["step"] for j in last.values())
        pairs = [sum(j.get(k, 0) for j in last.values()) for k in ("pair_exchanges", "pair_busy")]
        rows[cell["group"]].append((cell["seed"], reached, final, end, fast_end,
                                    pairs[0] / steps, pairs[1] / steps))
    with open(os.path.join(results, "time_curves.json"), "w") as f:
        json.dump(doc, f, indent=1)
    print("| cell | sim s to %.2f (seeds) | mean | final mean acc | sim s to end (median node, "
          "last node) | steps averaged | busy answers per step |" % target)
    print("|---|---|---|---|---|---|---|")
    for group, r in rows.items():
        times = [x[1] for x in r]
        per = ", ".join("-" if t is None else "%.1f" % t for t in times)
        mean = "-" if None in times else "%.1f" % (sum(times) / len(times))
        acc = sum(x[2] for x in r) / len(r)
        end = sum(x[3] for x in r) / len(r)
        mid = sum(x[4] for x in r) / len(r)
        avg = sum(x[5] for x in r) / len(r)
        busy = sum(x[6] for x in r) / len(r)
        pair = ("%.0f%% | %.2f" % (100 * avg, busy)) if avg > 0 else "- | -"
        print("| %s | %s | %s | %.4f | %.1f, %.1f | %s |" % (group, per, mean, acc, mid, end, pair))
    spec = dict(dict(FIGURES)["accuracy_vs_sim_time.png"])
    spec["title"] = "accuracy by simulated time (each node's latest evaluation)"
    spec["xlabel"] = "simulated time (s)"
    small_multiples(doc, build_view(doc), spec, os.path.join(results, "accuracy_vs_time.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
