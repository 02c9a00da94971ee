#!/usr/bin/env python3
"""Accuracy against simulated time for some cells of a `rumor compare` run.

usage: plot_sim_time.py compare.json OUT.png [SUBSTRING...]

Plots the cells whose group contains every SUBSTRING (all cells without one) in the style of
plot_compare.py (a panel per value of the non-method axes left, fixed method colours).
Simulated time is the slowest node's clock at each evaluation (in-process runs).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plot_compare import FIGURES, build_view, small_multiples  # noqa: E402


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    wanted = sys.argv[3:]

    def keep(entry):
        return all(w in entry.get("group", "") for w in wanted)

    doc["cells"] = [c for c in doc.get("cells") or [] if keep(c)]
    doc["failed"] = [c for c in doc.get("failed") or [] if keep(c)]
    if not doc["cells"] and not doc["failed"]:
        print("no group matches " + " ".join(wanted), file=sys.stderr)
        return 1
    spec = dict(dict(FIGURES)["accuracy_vs_sim_time.png"])
    if wanted:
        spec["title"] += ", " + ", ".join(wanted)
    if not small_multiples(doc, build_view(doc), spec, sys.argv[2]):
        print("no simulated time in these cells (in-process runs only)", file=sys.stderr)
        return 1
    print("wrote " + sys.argv[2], file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
