"""Reporting of error-analysis results: text summary, Figure 2 bar chart, Table 8 rows.

Works from the dicts :func:`analysis.seg_errors.analyze_errors` returns or the ``OUT.json``
files ``dcl-seg-errors`` writes (``null`` there = undefined stat = ``nan`` here).

Command line::

    python -m analysis.seg_errors.report OUT1.json [OUT2.json ...] [--labels A B ...]
        [--figure fig2.png] [--table table8.md] [--stat AP]

prints the Table 8 rows (Markdown) and writes the figure/table files atomically.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Mapping, Sequence

from analysis.coco_eval import STAT_NAMES
from analysis.io import atomic_path, check_outputs, read_json, write_text_atomic

__all__ = ["format_summary", "load_runs", "delta_frame", "figure2", "table8", "main"]

_SHOWN = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def _fmt(x: float | None, signed: bool = False, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def format_summary(result: Mapping) -> str:
    """Human-readable summary of one analysis result (several lines, no trailing newline)."""
    s, c = result["settings"], result["counts"]
    lines = [
        f"Segmentation error analysis (paper Sec. 3), mode={s['mode']}, "
        f"match: same category, mask IoU >= {s['iou_threshold']:g}",
        f"ground truth: {s['gt']} ({c['images']} images, {c['ground_truths']} instances, "
        f"{c['crowd_ground_truths']} crowd)",
        f"results: {s['dt']} ({c['predictions']} predictions, {c['evaluated_predictions']} "
        f"evaluated, {c['beyond_max_dets']} beyond {s['max_dets']} per image and category"
        + (f", {c['skipped_unknown_ids']} skipped: unknown ids" if c["skipped_unknown_ids"]
           else "") + ")",
        f"matched {c['matched']}, unmatched {c['unmatched']} (unmatched are "
        + ("corrected against the image's last ground truth, as the authors' script)"
           if s["mode"] == "authors" else "left unchanged, paper Sec. 3)"),
        "error pixels of matched predictions: "
        + ", ".join(f"{k} {v:,}" for k, v in c["error_pixels"].items()),
        "",
        f"{'':<16}" + "".join(f"{n:>8}" for n in _SHOWN),
        f"{'baseline':<16}" + "".join(f"{_fmt(result['baseline'][n]):>8}" for n in _SHOWN),
    ]
    for name, d in result["delta"].items():
        lines.append(f"{'dAP ' + name:<16}" + "".join(f"{_fmt(d[n], True):>8}" for n in _SHOWN))
    return "\n".join(lines)


def _as_result(obj: object, name: str) -> dict:
    if not isinstance(obj, dict):
        raise ValueError(f"{name}: not an error-analysis result (expected a JSON object)")
    for key in ("baseline", "delta"):
        if not isinstance(obj.get(key), dict):
            raise ValueError(f"{name}: missing '{key}' (is this a dcl-seg-errors OUT.json?)")
    for where, stats in [("baseline", obj["baseline"])] + [
            (f"delta.{k}", v) for k, v in obj["delta"].items()]:
        if not isinstance(stats, dict):
            raise ValueError(f"{name}: '{where}' must be an object of stats")
        missing = [n for n in STAT_NAMES if n not in stats]
        if missing:
            raise ValueError(f"{name}: '{where}' lacks stats {missing}")
    fix = {k: (math.nan if v is None else float(v)) for k, v in obj["baseline"].items()}
    out = dict(obj)
    out["baseline"] = fix
    out["delta"] = {t: {k: (math.nan if v is None else float(v)) for k, v in d.items()}
                    for t, d in obj["delta"].items()}
    return out


def load_runs(sources: Sequence[str | os.PathLike | Mapping],
              labels: Sequence[str] | None = None) -> dict[str, dict]:
    """Results keyed by label, from OUT.json paths or result dicts.

    Labels default to the file names without ``.json`` (``run1``, ``run2``... for dicts).

    Raises:
        ValueError: a file that is not valid JSON or not an analysis result (named), label
            count not matching, duplicate labels.
    """
    if labels is not None and len(labels) != len(sources):
        raise ValueError(f"{len(labels)} labels for {len(sources)} results")
    runs: dict[str, dict] = {}
    for i, src in enumerate(sources):
        if isinstance(src, Mapping):
            name, obj = f"run{i + 1}", dict(src)
        else:
            name = os.path.basename(os.fspath(src))
            name = name[:-5] if name.endswith(".json") else name
            obj = read_json(src)
        label = labels[i] if labels is not None else name
        if label in runs:
            raise ValueError(f"duplicate label {label!r}; pass --labels")
        runs[label] = _as_result(obj, os.fspath(src) if not isinstance(src, Mapping) else label)
    return runs


def delta_frame(runs: Mapping[str, Mapping], stat: str = "AP"):
    """Long ``pandas.DataFrame`` with columns ``run``, ``error``, ``delta`` (x100) for ``stat``."""
    import pandas as pd

    if stat not in STAT_NAMES:
        raise ValueError(f"unknown stat {stat!r}; one of {STAT_NAMES}")
    rows = [{"run": run, "error": err, "delta": float(d[stat])}
            for run, res in runs.items() for err, d in res["delta"].items()]
    return pd.DataFrame(rows, columns=["run", "error", "delta"])


def figure2(runs: Mapping[str, Mapping], stat: str = "AP", ax=None):
    """Figure 2 style bar chart: Delta ``stat`` per error type, one hue per run.

    Returns the matplotlib ``Figure`` (created without pyplot, so no display is needed).
    """
    import seaborn as sns
    from matplotlib.figure import Figure

    df = delta_frame(runs, stat)
    if ax is None:
        fig = Figure(figsize=(1.6 + 1.3 * max(1, df["error"].nunique()), 3.2),
                     layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    sns.barplot(data=df, x="error", y="delta", hue="run", ax=ax)
    for cont in ax.containers:
        ax.bar_label(cont, fmt="%.1f", fontsize=8, padding=1)
    ax.set_xlabel("error type")
    ax.set_ylabel(f"$\\Delta${stat} (expected improvement)")
    ax.axhline(0, color="black", linewidth=0.6)
    if ax.get_legend() is not None:
        ax.legend(title=None, fontsize=8)
    return fig


def table8(runs: Mapping[str, Mapping], digits: int = 1,
           types: Sequence[str] = ("fFP", "bFP", "FN")) -> str:
    """Table 8 style Markdown: ``| run | AP_val | dAP_fFP | dAP_bFP | dAP_FN |`` (x100).

    Missing error types or undefined values print as ``n/a``.
    """
    head = "| run | AP_val | " + " | ".join(f"ΔAP_{t} ↓" for t in types) + " |"
    sep = "|---|---:|" + "---:|" * len(types)
    rows = [head, sep]
    for run, res in runs.items():
        vals = [_fmt(res["baseline"]["AP"], digits=digits)]
        vals += [_fmt(res["delta"][t]["AP"], digits=digits) if t in res["delta"] else "n/a"
                 for t in types]
        rows.append(f"| {run} | " + " | ".join(vals) + " |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m analysis.seg_errors.report``; returns the exit status."""
    ap = argparse.ArgumentParser(
        prog="python -m analysis.seg_errors.report",
        description="Figure 2 bar chart and Table 8 rows from dcl-seg-errors OUT.json files.")
    ap.add_argument("results", nargs="+", help="OUT.json files written by dcl-seg-errors")
    ap.add_argument("--labels", nargs="+", help="one label per file (default: file names)")
    ap.add_argument("--figure", help="write the Figure 2 bar chart here (.png, .pdf, .svg)")
    ap.add_argument("--table", help="write the Table 8 Markdown here")
    ap.add_argument("--stat", default="AP", choices=STAT_NAMES, help="stat of the figure")
    args = ap.parse_args(argv)
    try:
        check_outputs([args.table, args.figure], args.results)
        runs = load_runs(args.results, args.labels)
        md = table8(runs)
        print(md)
        if args.table:
            write_text_atomic(args.table, md + "\n")
        if args.figure:
            fig = figure2(runs, stat=args.stat)
            with atomic_path(args.figure) as tmp:
                fig.savefig(tmp, dpi=150)
    except (ValueError, OSError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
