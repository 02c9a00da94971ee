#!/usr/bin/env python3
"""Accuracy against simulated time for some cells of a `rumor compare` run.

usage: plot_sim_time.py compare.json OUT.png [SUBSTRING...]

Plots the groups whose label contains every SUBSTRING (all groups without one), labelled
without the substrings they share. Simulated time is the slowest node's clock at each
evaluation (in-process runs). Reuses plot_compare.py's curves and plotting.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import json  # noqa: E402

from plot_compare import group_curves, line_plot  # noqa: E402


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    wanted = sys.argv[3:]
    curves = {}
    for group, rows in group_curves(doc).items():
        if all(w in group for w in wanted):
            label = group
            for w in wanted:
                label = label.replace(w, "")
            # "axis=" left without its value by the removal goes too.
            curves[" ".join(t for t in label.split() if not t.endswith("="))] = rows
    if not curves:
        print("no group matches " + " ".join(wanted), file=sys.stderr)
        return 1
    title = doc.get("grid", "") + (": " + ", ".join(wanted) if wanted else "")
    if not line_plot(curves, 4, 1, "simulated time (s)", "mean test accuracy", sys.argv[2], title=title):
        print("no simulated time in these cells (in-process runs only)", file=sys.stderr)
        return 1
    print("wrote " + sys.argv[2], file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
