#!/usr/bin/env python3
"""Plots for `rumor compare`: reads compare.json, writes PNGs beside it.

accuracy_vs_round.png, accuracy_vs_mb.png (log x), consensus_vs_round.png (log y),
accuracy_vs_sim_time.png (in-process runs: simulated seconds, the slowest node's clock) and
partition.png (per-node label histogram of the data the cells trained on). Curves are the
mean over seeds of each group of cells. Needs matplotlib (Debian: python3-matplotlib).
"""
import json
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def group_curves(doc):
    """{group: [(round, acc, mb, consensus, sim_time)]} averaged over the seeds of a group."""
    per_group = defaultdict(list)
    for cell in doc["cells"]:
        per_group[cell["group"]].append(cell.get("curve", []))
    out = {}
    for group, curves in per_group.items():
        by_round = defaultdict(lambda: defaultdict(list))
        for curve in curves:
            for p in curve:
                for key in ("test_acc", "mb_sent", "consensus_dist", "sim_time_s"):
                    if key in p and p[key] is not None:
                        by_round[p["round"]][key].append(p[key])
        rows = []
        for r in sorted(by_round):
            d = by_round[r]
            mean = {k: sum(v) / len(v) for k, v in d.items()}
            rows.append((r + 1, mean.get("test_acc"), mean.get("mb_sent"), mean.get("consensus_dist"),
                         mean.get("sim_time_s")))
        out[group] = rows
    return out


def line_plot(curves, x_index, y_index, xlabel, ylabel, path, logx=False, logy=False, title=""):
    many = len(curves) > 6
    # Many cells: distinct colours and dash patterns, the legend beside the axes.
    fig, ax = plt.subplots(figsize=(11, 5) if many else (7, 4.5))
    cmap = plt.get_cmap("tab20" if len(curves) > 10 else "tab10")
    styles = ["-", "--", ":", "-."]
    drew = False
    for i, (group, rows) in enumerate(curves.items()):
        pts = [(r[x_index], r[y_index]) for r in rows if r[x_index] is not None and r[y_index] is not None]
        if logx:
            pts = [p for p in pts if p[0] > 0]
        if logy:
            pts = [p for p in pts if p[1] > 0]
        if not pts:
            continue
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3, label=group,
                color=cmap(i % cmap.N), linestyle=styles[(i // cmap.N) % len(styles)])
        drew = True
    if not drew:
        plt.close(fig)
        return False
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if many:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def partition_plot(partitions, path):
    if not partitions:
        return False
    n = len(partitions)
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 4), squeeze=False)
    for ax, part in zip(axes[0], partitions):
        counts = part["counts"]
        classes = len(counts[0]) if counts else 0
        bottom = [0] * len(counts)
        cmap = plt.get_cmap("tab10" if classes <= 10 else "tab20")
        for c in range(classes):
            vals = [row[c] for row in counts]
            ax.bar(range(len(counts)), vals, bottom=bottom, color=cmap(c % cmap.N), label=str(c), width=0.85)
            bottom = [b + v for b, v in zip(bottom, vals)]
        p = part.get("partition", {})
        desc = p.get("kind", "")
        if desc == "dirichlet":
            desc += " alpha=%g" % p.get("alpha", 0)
        ax.set_title("%s, seed %s (label skew %.3f)" % (desc, part.get("seed"), part.get("label_skew", 0)), fontsize=9)
        ax.set_xlabel("node")
        ax.set_ylabel("training samples")
        if classes <= 10:
            ax.legend(title="class", fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main():
    if len(sys.argv) != 2:
        print("usage: plot_compare.py compare.json", file=sys.stderr)
        return 2
    path = sys.argv[1]
    with open(path) as f:
        doc = json.load(f)
    out = os.path.dirname(os.path.abspath(path))
    curves = group_curves(doc)
    name = doc.get("grid", "")
    written = []
    if line_plot(curves, 0, 1, "round", "mean test accuracy", os.path.join(out, "accuracy_vs_round.png"), title=name):
        written.append("accuracy_vs_round.png")
    if line_plot(curves, 2, 1, "MB sent (all nodes, method traffic)", "mean test accuracy",
                 os.path.join(out, "accuracy_vs_mb.png"), logx=True, title=name):
        written.append("accuracy_vs_mb.png")
    if line_plot(curves, 0, 3, "round", "consensus distance (mean over nodes)",
                 os.path.join(out, "consensus_vs_round.png"), logy=True, title=name):
        written.append("consensus_vs_round.png")
    if line_plot(curves, 4, 1, "simulated time (s)", "mean test accuracy",
                 os.path.join(out, "accuracy_vs_sim_time.png"), title=name):
        written.append("accuracy_vs_sim_time.png")
    if partition_plot(doc.get("partitions", []), os.path.join(out, "partition.png")):
        written.append("partition.png")
    print("plots: " + ", ".join(written) + " in " + out, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
