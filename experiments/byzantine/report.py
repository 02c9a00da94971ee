#!/usr/bin/env python3
"""Byzantine experiment: table of the honest nodes' final accuracy, the claim checked, and
plots of the honest nodes' accuracy drawn by tools/plot_compare.py.

usage: report.py RESULTS_DIR...   (each holding the compare.json of one grid)

For each results folder it writes honest/compare.json (every cell's curve with test_acc
replaced by honest_test_acc, the mean over the honest nodes) and runs tools/plot_compare.py
on it, then prints one markdown table per grid and the claim: where plain averaging breaks
down (its honest accuracy is more than 10 points below the attack-free run), clipped gossip
stays within 3 points of the attack-free run (mean aggregation, no attacker).
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PLOT = os.path.join(HERE, "..", "..", "tools", "plot_compare.py")
RULES = ["mean", "clip", "trimmed-mean"]
ATTACKS = ["none", "sign-flip", "gaussian", "alie", "zero"]
BREAKS = 0.10  # plain averaging "breaks down": this far below the attack-free run
WITHIN = 0.03  # the claim: clipped gossip within this of the attack-free run


def honest_acc(cell):
    """The honest nodes' final accuracy (all nodes when the cell has no attacker)."""
    v = cell.get("honest_mean_acc")
    return v if v is not None else cell["final"]["test_acc_mean"]


def labels(cell):
    """{axis: label} of a cell's group, e.g. 'topology=torus16 attack=none ...'."""
    return dict(part.split("=", 1) for part in cell["group"].split())


def cell_key(cell):
    lab = labels(cell)
    return lab["attack"], lab["method.aggregation"]


def honest_curves(doc, folder):
    out = dict(doc)
    out["cells"] = []
    for cell in doc["cells"]:
        c = dict(cell)
        c["curve"] = [dict(p, test_acc=p.get("honest_test_acc", p.get("test_acc")))
                      for p in cell.get("curve", [])]
        out["cells"].append(c)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "compare.json")
    with open(path, "w") as f:
        json.dump(out, f)
    # Debian's python3 has python3-matplotlib (as `rumor compare` uses it).
    subprocess.run(["/usr/bin/python3", PLOT, path], check=True)


def report(results):
    with open(os.path.join(results, "compare.json")) as f:
        doc = json.load(f)
    honest_curves(doc, os.path.join(results, "honest"))
    acc = {cell_key(c): honest_acc(c) for c in doc["cells"]}
    topo = labels(doc["cells"][0])["topology"]
    ref = acc[("none", "mean")]
    print(f"\n### {topo}: honest nodes' final test accuracy (attack-free mean: {ref:.4f})\n")
    print("| attack | " + " | ".join(RULES) + " | mean breaks down | clip within 3 points |")
    print("|---|" + "---|" * (len(RULES) + 2))
    held = broke = 0
    for a in ATTACKS:
        row = [acc.get((a, r)) for r in RULES]
        cells = " | ".join("-" if v is None else f"{v:.4f}" for v in row)
        if a == "none":
            print(f"| {a} | {cells} | | |")
            continue
        b = row[0] is not None and row[0] < ref - BREAKS
        ok = row[1] is not None and row[1] >= ref - WITHIN
        broke += b
        held += b and ok
        print(f"| {a} | {cells} | {'yes' if b else 'no'} | {'yes' if ok else 'NO'} |")
    print(f"\nclaim on {topo}: plain averaging broke down under {broke} of {len(ATTACKS) - 1} "
          f"attacks; clipped gossip stayed within 3 points of the attack-free run in {held} of "
          f"those {broke}")
    return held == broke


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    ok = all([report(r) for r in sys.argv[1:]])
    print("\nclaim " + ("holds" if ok else "does NOT hold everywhere"))


if __name__ == "__main__":
    main()
