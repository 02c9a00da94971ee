#!/usr/bin/env python3
"""Plots for `rumor compare`: reads compare.json, writes PNGs beside it.

usage: plot_compare.py compare.json

Runs by itself on any results folder (nothing is trained), and `rumor compare` calls it.

Small multiples: the grid's method axis (`method`, else `codec`, else its first axis) gives
the lines; every other axis but `seed` gives the panels (one panel per value, a row per value
of the first and a column per value of the last when there are two). A line is the mean over
the seeds of its cell, with the seeds' range shaded when there are several; a cell that
failed is marked with an x where it diverged. Colours come from fixed tables, so a method
has the same colour in every plot of every grid (variants of one method differ by line
style); a grid whose lines all share one method is coloured by codec, and one whose lines
also share the codec by line order.

Writes accuracy_vs_round.png, accuracy_vs_mb.png (log x), accuracy_vs_sim_time.png (runs
with simulated time), consensus_vs_round.png (log y) and partition.png (class mix per
node of the data the cells trained on); a figure whose quantity no cell recorded is skipped.
Needs matplotlib (Debian: python3-matplotlib).
"""
import json
import math
import os
import re
import sys
import zlib
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

# Fixed colours: a method keeps its colour across every plot of every grid.
METHOD_COLOURS = {
    "dpsgd": "#1f77b4",
    "sgp": "#ff7f0e",
    "choco": "#2ca02c",
    "squarm": "#d62728",
    "qgm": "#9467bd",
    "allreduce": "#333333",
    "local": "#8c564b",
    "qdata": "#e377c2",
    "gt": "#17becf",
    "diloco": "#bcbd22",
    "adpsgd": "#8c6d31",
}
# Codec families (stage names without arguments), for grids of one method.
CODEC_COLOURS = {
    "fp32": "#333333",
    "topk": "#1b9e77",
    "sketch": "#d95f02",
    "topk|qsgd": "#7570b3",
    "topk|sign": "#e7298a",
    "qsgd": "#66a61e",
    "sign": "#e6ab02",
    "randk": "#a6761d",
}
# A method or codec no table knows: always the same one of these (by a hash of its name).
SPARE_COLOURS = ["#17becf", "#bcbd22", "#393b79", "#7f7f7f", "#ad494a", "#637939"]
# Grids whose lines share method and codec: colours in line order.
ORDER_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
                 "#a6761d", "#666666"]
LINESTYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v", "P"]


def axis_labels(doc, group):
    """{axis: label} of a cell, read from its group ("axis=label axis=label ...")."""
    axes = [a for a in doc.get("axes", []) if a != "seed"]
    out = {}
    for i, axis in enumerate(axes):
        start = group.find(axis + "=") if i == 0 else group.find(" " + axis + "=") + 1
        if (i == 0 and start != 0) or (i > 0 and start == 0):
            return {}
        start += len(axis) + 1
        end = group.find(" " + axes[i + 1] + "=", start) if i + 1 < len(axes) else len(group)
        if end < 0:
            return {}
        out[axis] = group[start:end]
    return out


def series_axis(doc):
    axes = [a for a in doc.get("axes", []) if a != "seed"]
    for name in ("method", "codec"):
        if name in axes:
            return name
    return axes[0] if axes else None


def codec_family(codec):
    """"topk:0.1|sign" -> "topk|sign"."""
    if not codec:
        return None
    first = codec.split()[0]
    return "|".join(stage.split(":")[0] for stage in first.split("|"))


def short_value(axis, label):
    """A panel title part: a bare number gets its key's last part ("alpha = 0.1")."""
    if re.fullmatch(r"-?[0-9.eE+-]+", label):
        return "%s = %s" % (axis.split(".")[-1], label)
    return label


def known_kind(label):
    """(method, codec family) guessed from a line's label, for cells that left no summary."""
    tokens = re.split(r"[\s,/+()]+", label.lower())
    method = next((t for t in tokens if t in METHOD_COLOURS), None)
    family = codec_family(label)
    codec = family if family and family.split("|")[0] in ("fp32", "topk", "sketch", "qsgd",
                                                          "sign", "randk") else None
    return method, codec


def line_styles(lines, kinds):
    """{line: matplotlib style}: colour from the method, else the codec, else the order."""
    kind = {line: kinds.get(line) or known_kind(line) for line in lines}
    methods = {k[0] for k in kind.values() if k[0]}
    codecs = {k[1] for k in kind.values() if k[1]}
    if len(methods) > 1:
        key_of, table = (lambda line: kind[line][0]), METHOD_COLOURS
    elif len(codecs) > 1:
        key_of, table = (lambda line: kind[line][1]), CODEC_COLOURS
    else:
        key_of, table = (lambda line: line), {}
    styles, variants, keys = {}, defaultdict(int), []
    for line in lines:
        key = key_of(line) or line
        if key not in keys:
            keys.append(key)
        if key in table:
            colour = table[key]
        elif table:  # a name no table knows: the same spare colour wherever it appears
            colour = SPARE_COLOURS[zlib.crc32(key.encode()) % len(SPARE_COLOURS)]
        else:
            colour = ORDER_COLOURS[keys.index(key) % len(ORDER_COLOURS)]
        n = variants[key]
        variants[key] += 1
        styles[line] = {"color": shade(colour, n), "linestyle": LINESTYLES[n % len(LINESTYLES)],
                        "marker": MARKERS[n % len(MARKERS)]}
    return styles


def shade(colour, variant):
    """The method's colour, darker or lighter for its 2nd, 3rd, ... variant in a grid."""
    mix = [0.0, -0.35, 0.4, -0.6, 0.6][variant % 5]
    rgb = to_rgb(colour)
    if mix < 0:
        return tuple(c * (1 + mix) for c in rgb)
    return tuple(c + (1 - c) * mix for c in rgb)


def build_view(doc):
    """Lines, panels and the curves of each (panel, line), from compare.json."""
    line_axis = series_axis(doc)
    panel_axes = [a for a in doc.get("axes", []) if a not in ("seed", line_axis)]
    cells = doc.get("cells") or []
    failed = doc.get("failed") or []
    groups = [c.get("group", "all") for c in cells + failed]
    if not all(axis_labels(doc, g) for g in groups):  # unreadable groups: a line each
        line_axis, panel_axes = None, []
    view = {"panel_axes": panel_axes, "panels": [], "lines": [],
            "curves": defaultdict(list), "failed": defaultdict(list), "seeds": set()}

    def place(group):
        labels = axis_labels(doc, group) if line_axis else {}
        key = (tuple(labels[a] for a in panel_axes), labels.get(line_axis, group))
        for part, where in ((key[0], "panels"), (key[1], "lines")):
            if part not in view[where]:
                view[where].append(part)
        return key

    kinds = {}
    for cell in cells:
        key = place(cell.get("group", "all"))
        view["curves"][key].append(cell.get("curve") or [])
        view["seeds"].add(cell.get("seed"))
        kinds.setdefault(key[1], (cell.get("method"), codec_family(cell.get("codec"))))
    for f in failed:
        view["failed"][place(f.get("group", "all"))].append(f.get("error", ""))
    view["style"] = line_styles(view["lines"], kinds)
    return view


def mean_curve(curves, x, y):
    """[(x, mean y, min y, max y, seeds)] per evaluated round, over the seeds' curves."""
    by_round = defaultdict(lambda: ([], []))
    for curve in curves:
        for p in curve:
            if not isinstance(p, dict) or "round" not in p:
                continue
            xv = p["round"] + 1 if x == "round" else p.get(x)
            yv = p.get(y)
            if isinstance(xv, (int, float)) and isinstance(yv, (int, float)):
                by_round[p["round"]][0].append(xv)
                by_round[p["round"]][1].append(yv)
    out = []
    for r in sorted(by_round):
        xs, ys = by_round[r]
        out.append((sum(xs) / len(xs), sum(ys) / len(ys), min(ys), max(ys), len(ys)))
    return out


def grid_shape(view):
    """Rows, columns and {panel: (row, column)}."""
    panels, axes = view["panels"], view["panel_axes"]
    if len(axes) >= 2:
        rows = list(dict.fromkeys(p[:-1] for p in panels))
        cols = list(dict.fromkeys(p[-1] for p in panels))
        return len(rows), len(cols), {p: (rows.index(p[:-1]), cols.index(p[-1])) for p in panels}
    n = max(len(panels), 1)
    cols = n if n <= 4 else (3 if n in (5, 6, 9) else 4)
    return math.ceil(n / cols), cols, {p: divmod(i, cols) for i, p in enumerate(panels)}


def panel_title(view, panel):
    return ", ".join(short_value(a, v) for a, v in zip(view["panel_axes"], panel))


def draw_panel(ax, view, panel, spec):
    """The lines of one panel; returns the lines it drew (or marked as failed)."""
    drew = []
    for line in view["lines"]:
        pts = mean_curve(view["curves"].get((panel, line), []), spec["x"], spec["y"])
        pts = [p for p in pts if (not spec.get("logx") or p[0] > 0) and
               (not spec.get("logy") or p[2] > 0)]
        style = view["style"][line]
        if pts:
            xs = [p[0] for p in pts]
            ax.plot(xs, [p[1] for p in pts], markersize=3, linewidth=1.5, **style)
            if max(p[4] for p in pts) > 1:  # several seeds: their range
                ax.fill_between(xs, [p[2] for p in pts], [p[3] for p in pts],
                                color=style["color"], alpha=0.15, linewidth=0)
            drew.append(line)
        for error in view["failed"].get((panel, line), []):
            drew.append(line)
            m = re.search(r"round (\d+)", error)
            if m and spec["x"] == "round":  # where it stopped, on the x axis
                ax.plot([int(m.group(1)) + 1], [0.03], marker="x", markersize=8,
                        markeredgewidth=2, color=style["color"], clip_on=False,
                        transform=blended_transform_factory(ax.transData, ax.transAxes))
    ax.set_title(panel_title(view, panel), fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=8)
    return drew


def legend_handles(view, drawn, target):
    handles = []
    for line in view["lines"]:
        if line not in drawn:
            continue
        label = line
        if any(view["failed"].get((p, line)) for p in view["panels"]):
            label += " (failed)" if not all(
                "diverged" in e for p in view["panels"] for e in view["failed"].get((p, line), [])
            ) else " (diverged)"
        style = dict(view["style"][line])
        if not any(view["curves"].get((p, line)) for p in view["panels"]):  # failed everywhere
            style.update(linestyle="none", marker="x", markersize=7, markeredgewidth=2)
        handles.append(Line2D([], [], label=label, **{"markersize": 4, **style}))
    if target:
        handles.append(Line2D([], [], color="0.4", linestyle=(0, (2, 2)), linewidth=1,
                              label="target %g" % target))
    return handles


def small_multiples(doc, view, spec, path):
    """One figure: a panel per value of the non-method axes. False if nothing to draw."""
    if not any(mean_curve(curves, spec["x"], spec["y"]) for curves in view["curves"].values()):
        return False
    rows, cols, where = grid_shape(view)
    single = rows * cols == 1
    fig, axs = plt.subplots(rows, cols, squeeze=False, sharex=True, sharey=True,
                            figsize=(6.4, 4.2) if single else (3.8 * cols + 0.6, 2.8 * rows + 0.6))
    drawn = set()
    for panel, (r, c) in where.items():
        drawn.update(draw_panel(axs[r][c], view, panel, spec))
    used = set(where.values())
    for r in range(rows):
        for c in range(cols):
            if (r, c) not in used:
                axs[r][c].set_visible(False)
    target = doc.get("target_acc") if spec["y"] == "test_acc" else None
    for (r, c) in used:
        if target:
            axs[r][c].axhline(target, color="0.4", linestyle=(0, (2, 2)), linewidth=1)
        if spec.get("logx"):
            axs[r][c].set_xscale("log")
        if spec.get("logy"):
            axs[r][c].set_yscale("log")
    fig.supxlabel(spec["xlabel"], fontsize=10)
    fig.supylabel(spec["ylabel"], fontsize=10)
    seeds = sorted(s for s in view["seeds"] if s is not None)
    note = " (mean of seeds %s; shaded: their range)" % ", ".join(map(str, seeds)) \
        if len(seeds) > 1 else ""
    fig.suptitle("%s: %s%s" % (doc.get("grid", ""), spec["title"], note), fontsize=11)
    handles = legend_handles(view, drawn, target)
    fig.tight_layout()
    longest = max((len(h.get_label()) for h in handles), default=0)
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), frameon=False,
               ncol=max(1, min(len(handles), 2 if longest > 30 else 4)), fontsize=9)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def partition_title(part):
    p = part.get("partition") or {}
    kind = p.get("kind", "")
    if kind == "dirichlet":
        desc = "Dirichlet alpha = %g" % p.get("alpha", 0)
    elif kind == "shards":
        desc = "%s shards per node" % p.get("shards", "?")
    else:
        desc = kind or "partition"
    return "%s, seed %s, %d nodes, label skew %.2f" % (
        desc, part.get("seed", "?"), len(part.get("counts", [])), part.get("label_skew", 0))


def partition_plot(doc, path):
    """Class mix per node (stacked shares) under each node's sample count."""
    parts = [p for p in doc.get("partitions") or [] if p.get("counts")]
    if not parts:
        return False
    classes = max(len(row) for p in parts for row in p["counts"])
    cmap = plt.get_cmap("tab10" if classes <= 10 else "tab20")
    cols = min(len(parts), 2)
    rows = math.ceil(len(parts) / cols)
    fig = plt.figure(figsize=(6.0 * cols, 3.4 * rows))
    outer = fig.add_gridspec(rows, cols, hspace=0.45, wspace=0.18, right=0.9,
                             top=1 - 0.7 / (3.4 * rows))
    for i, part in enumerate(parts):
        inner = outer[i // cols, i % cols].subgridspec(2, 1, height_ratios=[1, 3], hspace=0.06)
        top = fig.add_subplot(inner[0])
        mix = fig.add_subplot(inner[1], sharex=top)
        counts = part["counts"]
        totals = [sum(row) for row in counts]
        nodes = list(range(len(counts)))
        top.bar(nodes, totals, color="0.55", width=0.8)
        top.set_ylabel("samples", fontsize=8)
        top.tick_params(labelbottom=False, labelsize=7)
        top.set_title(partition_title(part), fontsize=9)
        bottom = [0.0] * len(counts)
        for c in range(classes):
            share = [row[c] / t if t and c < len(row) else 0.0 for row, t in zip(counts, totals)]
            mix.bar(nodes, share, bottom=bottom, color=cmap(c % cmap.N), width=0.8,
                    label="class %d" % c)
            bottom = [b + s for b, s in zip(bottom, share)]
        mix.set_ylim(0, 1)
        mix.set_xlim(-0.6, len(counts) - 0.4)
        mix.set_xticks(nodes if len(nodes) <= 16 else nodes[::4])
        mix.tick_params(labelsize=7)
        mix.set_ylabel("class mix", fontsize=8)
        mix.set_xlabel("node", fontsize=8)
    handles, labels = mix.get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.9, 0.5), frameon=False,
               fontsize=8)
    fig.suptitle("%s: training data per node" % doc.get("grid", ""), fontsize=11)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


FIGURES = [
    ("accuracy_vs_round.png", {"x": "round", "y": "test_acc", "xlabel": "round",
                               "ylabel": "mean node test accuracy", "title": "accuracy by round"}),
    ("accuracy_vs_mb.png", {"x": "mb_sent", "y": "test_acc", "logx": True,
                            "xlabel": "MB sent (all nodes, method traffic; log)",
                            "ylabel": "mean node test accuracy", "title": "accuracy by bytes"}),
    ("accuracy_vs_sim_time.png", {"x": "sim_time_s", "y": "test_acc",
                                  "xlabel": "simulated time (s, slowest node)",
                                  "ylabel": "mean node test accuracy",
                                  "title": "accuracy by simulated time"}),
    ("consensus_vs_round.png", {"x": "round", "y": "consensus_dist", "logy": True,
                                "xlabel": "round", "ylabel": "consensus distance (log)",
                                "title": "consensus distance by round"}),
]


def plot_all(doc, out):
    """Every figure the document has data for; returns the names written."""
    view = build_view(doc)
    written = []
    for name, spec in FIGURES:
        if small_multiples(doc, view, spec, os.path.join(out, name)):
            written.append(name)
    if partition_plot(doc, os.path.join(out, "partition.png")):
        written.append("partition.png")
    return written


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path = sys.argv[1]
    with open(path) as f:
        doc = json.load(f)
    out = os.path.dirname(os.path.abspath(path))
    written = plot_all(doc, out)
    print("plots: " + (", ".join(written) or "none (no curves recorded)") + " in " + out,
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
