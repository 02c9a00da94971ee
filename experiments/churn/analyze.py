#!/usr/bin/env python3
"""Curves, table and plot of the churn experiment.

usage: analyze.py OUT      (OUT holds churn-sgp, static-sgp, churn-dpsgd, static-dpsgd, each
                            with one run directory from `rumor launch --inprocess`)
       analyze.py --plot experiments/churn/results/curves.json   (redraw, no runs needed)

From each node's metrics lines (node-*.jsonl), per evaluation round: the mean test accuracy
and the mean consensus distance over the nodes that logged it (the nodes in the run at that
round; in-process the consensus distance of a node is its squared distance to the exact
mean of the live nodes' models). Per round: the push-sum weight summed over the nodes that
logged it, against the nodes at the start. Writes curves.json, table.md and
accuracy_consensus_vs_round.png beside curves.json (OUT, or the folder given to --plot).
"""
import glob
import json
import os
import sys
from collections import defaultdict

RUNS = ["churn-sgp", "static-sgp", "churn-dpsgd", "static-dpsgd"]
COLOURS = {"sgp": "#ff7f0e", "dpsgd": "#1f77b4"}  # as tools/plot_compare.py


def run_dir(out, name):
    found = glob.glob(os.path.join(out, name, "**", "config.json"), recursive=True)
    if len(found) != 1:
        raise SystemExit(f"{out}/{name}: expected one run directory, found {len(found)}")
    return os.path.dirname(found[0])


def node_lines(run):
    out = {}
    for path in glob.glob(os.path.join(run, "node-*.jsonl")):
        with open(path) as f:
            out[int(os.path.basename(path)[5:-6])] = [json.loads(l) for l in f if l.strip()]
    return out


def curves(run):
    cfg = json.load(open(os.path.join(run, "config.json")))
    nodes = node_lines(run)
    acc, dist, weight, live = (defaultdict(list) for _ in range(4))
    for ls in nodes.values():
        for l in ls:
            live[l["round"]].append(l["node"])
            if "test_acc" in l:
                acc[l["round"]].append(l["test_acc"])
            if "consensus_dist" in l:
                dist[l["round"]].append(l["consensus_dist"])
            if "ps_weight" in l:
                weight[l["round"]].append(l["ps_weight"])
    started = sum(1 for n in cfg["topology"]["nodes"] if not n.get("standby", False))
    last = cfg["rounds"] - 1
    final = {l[-1]["node"]: [x for x in l if "test_acc" in x][-1]["test_acc"]
             for l in nodes.values() if l and l[-1]["round"] == last}
    c = {"method": cfg["method"]["name"], "nodes_at_start": started,
         "rounds": sorted(acc), "acc": [sum(acc[r]) / len(acc[r]) for r in sorted(acc)],
         "acc_min": [min(acc[r]) for r in sorted(acc)],
         "dist_rounds": sorted(dist), "dist": [sum(dist[r]) / len(dist[r]) for r in sorted(dist)],
         "live": [len(live[r]) for r in sorted(live)],
         "final_mean": sum(final.values()) / len(final), "final_min": min(final.values()),
         "final_min_node": min(final, key=final.get), "final_max": max(final.values()),
         "nodes_at_end": len(final)}
    if weight:
        dev = {r: abs(sum(w) - started) for r, w in weight.items()}
        c["weight_max_dev"] = max(dev.values())
        c["weight_worst_round"] = max(dev, key=dev.get)
        c["weight_rounds"] = len(dev)
    return c


def table(all_curves):
    rows = ["| run | nodes at the end | final mean acc | min (node) | max | "
            "consensus distance at the end | push-sum weight, max deviation |",
            "|---|---|---|---|---|---|---|"]
    for name in RUNS:
        c = all_curves[name]
        w = f"{c['weight_max_dev']:.1e} over {c['weight_rounds']} rounds" \
            if "weight_max_dev" in c else "-"
        rows.append(f"| {name} | {c['nodes_at_end']} | {c['final_mean']:.4f} | "
                    f"{c['final_min']:.4f} ({c['final_min_node']}) | {c['final_max']:.4f} | "
                    f"{c['dist'][-1]:.3g} | {w} |")
    for m in ("sgp", "dpsgd"):
        d = 100 * (all_curves[f"churn-{m}"]["final_mean"] - all_curves[f"static-{m}"]["final_mean"])
        rows.append(f"\n{m}: churn minus static, final mean accuracy: {d:+.2f} points")
    return "\n".join(rows) + "\n"


def plot(all_curves, events, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for name in RUNS:
        c = all_curves[name]
        style = "-" if name.startswith("churn") else "--"
        ax[0].plot(c["rounds"], c["acc"], style, color=COLOURS[c["method"]], label=name)
        ax[1].plot(c["dist_rounds"], c["dist"], style, color=COLOURS[c["method"]], label=name)
    for a in ax:
        for kind, r in events:
            a.axvline(r, color="#2ca02c" if kind == "join" else "#d62728", lw=0.6, alpha=0.5)
        a.set_xlabel("round (green: a node joins, red: a node leaves)")
    ax[0].set_ylabel("mean test accuracy of the live nodes")
    ax[0].set_ylim(0.6, 0.9)
    ax[1].set_ylabel("mean consensus distance of the live nodes")
    ax[1].set_yscale("log")
    ax[0].legend(loc="lower right")
    fig.suptitle("32-node random 4-regular graph: one join or leave every 50 rounds vs static")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    if sys.argv[1] == "--plot":
        data = json.load(open(sys.argv[2]))
        out = os.path.dirname(sys.argv[2])
    else:
        out = sys.argv[1]
        data = {"curves": {n: curves(run_dir(out, n)) for n in RUNS}}
        faults = json.load(open(os.path.join(run_dir(out, "churn-sgp"), "config.json")))["faults"]
        data["events"] = sorted([("join", e["round"]) for e in faults["join"]] +
                                [("leave", e["round"]) for e in faults["leave"]],
                                key=lambda e: e[1])
        with open(os.path.join(out, "curves.json"), "w") as f:
            json.dump(data, f, indent=1)
    t = table(data["curves"])
    print(t)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(t)
    plot(data["curves"], data["events"], os.path.join(out, "accuracy_consensus_vs_round.png"))


main()
