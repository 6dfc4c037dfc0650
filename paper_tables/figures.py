"""Figures of the sweep tables (paper Tables 1, 3 and 4 as curves): AP against lambda, tau, K.

The paper prints these sweeps as tables only; the report adds one panel per sweep with the
measured AP and the paper's AP on the same axis, so the shape of each sweep can be compared at
a glance. Points without a value (a sweep point not run at this scale) are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from analysis.io import atomic_path

__all__ = ["GAIN_FAMILIES", "plot_gains", "plot_sweeps"]

#: Table families of the gain figures: file stem -> (title, tables).
GAIN_FAMILIES = {
    "gains_sweeps": ("Loss weight and K (Tables 1, 4)", ("table1", "table4")),
    "gains_models": ("Models and datasets (Tables 5-7)", ("table5", "table6", "table7")),
    "gains_errors": ("Error analysis (Table 8)", ("table8",)),
    "gains_same_baseline": ("Same baseline: DCL, ContrastMask's loss, both (no paper numbers)",
                            ("same_baseline", "same_baseline_errors")),
}
# The column whose gain each table's claim is about (Table 8 adds its Delta AP columns).
_GAIN_COLUMNS = {"table5": ("AP_val",), "table8": ("AP", "dAP_fFP", "dAP_bFP", "dAP_FN"),
                 "same_baseline_errors": ("dAP_fFP", "dAP_bFP", "dAP_FN")}


def plot_sweeps(tables: Iterable[Mapping], path: str | Path, scale: str) -> int:
    """Draw one panel per table that has a ``sweep`` (see :func:`paper_tables.build.build_tables`).

    Returns:
        The number of panels drawn (0 writes a figure saying there is no sweep).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    sweeps = [t for t in tables if t.get("sweep")]
    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(1, max(len(sweeps), 1), figsize=(4.2 * max(len(sweeps), 1), 3.4),
                             squeeze=False)
    for ax, t in zip(axes[0], sweeps):
        points = [
            {"x": p["x"], "AP": p[side], "source": f"measured ({scale})" if side == "measured" else "paper"}
            for p in t["sweep"]["points"] for side in ("measured", "paper") if p[side] is not None
        ]
        frame = pd.DataFrame(points, columns=["x", "AP", "source"])
        if len(frame):
            sns.lineplot(data=frame, x="x", y="AP", hue="source", style="source", markers=True,
                         dashes=False, ax=ax, sort=True)
        ax.set_xlabel(t["sweep"]["label"])
        ax.set_ylabel("mask AP")
        ax.set_title(t["title"], fontsize=9)
    if not sweeps:
        axes[0][0].text(0.5, 0.5, "no sweep table at this scale", ha="center", va="center")
        axes[0][0].set_axis_off()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130)
    plt.close(fig)
    return len(sweeps)


def plot_gains(tables: Iterable[Mapping], path: str | Path, family: str, scale: str) -> int:
    """One figure for a family of :data:`GAIN_FAMILIES`: each DCL-minus-baseline gain measured
    here with its 95% interval (paired bootstrap) beside the paper's gain, labelled with its
    verdict (:mod:`paper_tables.uncertainty`).

    Returns:
        The number of gains drawn (0 writes a figure saying there is none at this scale).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    title, ids = GAIN_FAMILIES[family]
    items = []
    for t in tables:
        if t["id"] not in ids:
            continue
        for g in t.get("gains", []):
            for col in _GAIN_COLUMNS.get(t["id"], ("AP",)):
                cell = g["cells"].get(col)
                if cell is None or (cell["measured"] is None and cell["paper"] is None):
                    continue
                label = f"{t['id']}: {g['label']}" + ("" if col == "AP" else f" [{col}]")
                items.append((label, cell))
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * max(len(items), 2) + 1.2))
    legend = {"measured": f"measured ({scale}), 95% interval", "paper": "paper"}

    def once(key):  # each legend entry on its first mark only
        return legend.pop(key, None)

    for y, (label, cell) in enumerate(items):
        m, ci = cell["measured"], cell.get("ci95")
        if m is not None:
            err = None if ci is None else [[m - ci[0]], [ci[1] - m]]
            ax.errorbar([m], [y], xerr=err, fmt="o", color="C0", capsize=3,
                        label=once("measured"))
        if cell["paper"] is not None:
            ax.plot([cell["paper"]], [y], "D", color="C3", label=once("paper"))
        if cell.get("verdict"):
            ax.annotate(cell["verdict"], (1.01, y), xycoords=("axes fraction", "data"),
                        va="center", fontsize=7)
    if items:
        ax.axvline(0.0, color="0.5", lw=0.8)
        ax.set_yticks(range(len(items)), [lbl for lbl, _ in items], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("gain over the baseline (AP; for Delta AP of an error type lower is better)"
                      if family in ("gains_errors", "gains_same_baseline")
                      else "gain over the baseline (AP)")
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.6 / len(items)),
                      ncol=2, frameon=False)
    else:
        ax.text(0.5, 0.5, "no gain of these tables at this scale", ha="center", va="center")
        ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130)
    plt.close(fig)
    return len(items)
