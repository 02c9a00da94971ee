#!/usr/bin/env python3
"""A markdown table of summary.json fields for the cells of a `rumor compare` run.

usage: summary_table.py compare.json FIELD [FIELD...]

FIELD is a dotted path into a cell's summary (e.g. final.test_acc_mean,
ps_weight_sum_final_dev, time_to_target.sim_time_s). One row per group: the mean over
its seeds, and in brackets the values of each seed when there are several.
"""
import json
import sys
from collections import defaultdict


def field(doc, path):
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc if isinstance(doc, (int, float)) and not isinstance(doc, bool) else None


def fmt(v):
    if v is None:
        return "-"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return "%.2e" % v
    return "%.4g" % v


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    fields = sys.argv[2:]
    groups = defaultdict(list)
    order = []
    for cell in doc["cells"]:
        g = cell.get("group", "all")
        if g not in groups:
            order.append(g)
        groups[g].append(cell)
    print("| cell | " + " | ".join(fields) + " |")
    print("|---|" + "---|" * len(fields))
    for g in order:
        cols = []
        for name in fields:
            vals = [field(c, name) for c in groups[g]]
            have = [v for v in vals if v is not None]
            mean = sum(have) / len(have) if have else None
            text = fmt(mean)
            if len(vals) > 1:
                text += " (" + ", ".join(fmt(v) for v in vals) + ")"
            cols.append(text)
        print("| " + g + " | " + " | ".join(cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
