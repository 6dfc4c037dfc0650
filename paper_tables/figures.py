"""Figures of the sweep tables (paper Tables 1, 3 and 4 as curves): AP against lambda, tau, K.

The paper prints these sweeps as tables only; the report adds one panel per sweep with the
measured AP and the paper's AP on the same axis, so the shape of each sweep can be compared at
a glance. Points without a value (a sweep point not run at this scale) are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from analysis.io import atomic_path

__all__ = ["plot_sweeps"]


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
