"""``python -m analysis.intervals GT.json PRED.json [--baseline PRED0.json]``: COCO segm and box
stats with 95% image-bootstrap intervals, and the paired interval of the gain over a baseline.

For result files outside the workflow (the workflow keeps the matchings and the tables show the
intervals): prints one line per stat, ``value [lo, hi]``, x100; with ``--baseline`` also
``gain [lo, hi]`` (the same resampled images for both). ``--json`` writes the numbers.
Exit status 1 with a one-line ``error: ...`` on bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import numpy as np

from analysis.bootstrap import (DEFAULT_RESAMPLES, DEFAULT_SEED, METHODS, MatchArrays,
                                Resampler, interval_dict, resample_weights)
from analysis.coco_eval import STAT_NAMES, evaluate_bbox, evaluate_segm
from analysis.coco_format import CocoFormatError, load_ground_truth
from analysis.io import check_outputs, read_json, write_json_atomic

__all__ = ["main", "run_intervals"]


def _resampled(gt, predictions, weights) -> dict:
    """{iou type: (point stats x100, (B, 12) resampled stats)} of one result set."""
    evals: dict = {}
    out = {}
    out["segm"] = evaluate_segm(gt, predictions, evals=evals).stats
    if predictions and all("bbox" in p for p in predictions):
        out["bbox"] = evaluate_bbox(gt, predictions, evals=evals)
    return {k: (np.array([v[s] for s in STAT_NAMES]),
                Resampler(MatchArrays.from_cocoeval(evals[k])).stats(weights)[0])
            for k, v in out.items()}


def run_intervals(gt_path: str, predictions_path: str, baseline_path: str | None = None,
                  resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                  method: str = METHODS[0]) -> dict:
    """``{iou type: {stat: {value, ci95}}}`` and, with a baseline, ``gain`` the same way."""
    gt = load_ground_truth(gt_path)
    weights = resample_weights(len(gt.image_ids), resamples, seed)
    ours = _resampled(gt, read_json(predictions_path), weights)
    out = {"resamples": resamples, "seed": seed, "method": method, "images": len(gt.image_ids)}
    for kind, (point, samples) in ours.items():
        ci = interval_dict(samples, STAT_NAMES, point, method)
        out[kind] = {s: {"value": float(point[j]), "ci95": ci[s]} for j, s in enumerate(STAT_NAMES)}
    if baseline_path:
        base = _resampled(gt, read_json(baseline_path), weights)
        out["gain"] = {}
        for kind in ours.keys() & base.keys():
            diff = ours[kind][1] - base[kind][1]
            ci = interval_dict(diff, STAT_NAMES, ours[kind][0] - base[kind][0], method)
            out["gain"][kind] = {s: {"value": float(ours[kind][0][j] - base[kind][0][j]),
                                     "ci95": ci[s]} for j, s in enumerate(STAT_NAMES)}
    return out


def _line(name: str, cell: dict, signed: bool = False) -> str:
    v, ci = cell["value"], cell["ci95"]
    f = "{:+.1f}" if signed else "{:.1f}"
    text = f.format(v) if np.isfinite(v) else "–"
    if ci:
        text += " [" + f.format(ci[0]) + ", " + f.format(ci[1]) + "]"
    return f"  {name:<6} {text}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.intervals",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("gt", help="COCO ground-truth JSON")
    ap.add_argument("predictions", help="COCO results JSON")
    ap.add_argument("--baseline", help="results JSON of the baseline, for the paired gain")
    ap.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--method", choices=METHODS, default=METHODS[0],
                    help="percentile (default) or basic (bias-corrected) intervals")
    ap.add_argument("--json", help="write the numbers here (JSON, atomically; never one of "
                                   "the inputs)")
    args = ap.parse_args(argv)
    try:
        check_outputs([args.json], [p for p in (args.gt, args.predictions, args.baseline) if p])
        out = run_intervals(args.gt, args.predictions, args.baseline, args.resamples, args.seed,
                            args.method)
    except (CocoFormatError, ValueError, OSError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    print(f"{out['images']} images, {out['resamples']} resamples (seed {out['seed']}), "
          f"95% {out['method']} intervals, x100")
    for kind in ("segm", "bbox"):
        if kind in out:
            print(kind)
            for s in STAT_NAMES[:6]:
                print(_line(s, out[kind][s]))
    for kind, cells in out.get("gain", {}).items():
        print(f"gain over the baseline, {kind} (paired)")
        for s in STAT_NAMES[:6]:
            print(_line(s, cells[s], signed=True))
    if args.json:
        write_json_atomic(args.json, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
