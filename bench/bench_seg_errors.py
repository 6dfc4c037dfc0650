"""Benchmark the segmentation error analysis against ONE stock pycocotools segm COCOeval.

Builds COCO-val-scale synthetic data (default 5,000 images, about 7 ground truths and 100
predictions per image, predictions made by perturbing the ground-truth shapes; see
``analysis/seg_errors/synthetic.py``), then, in the same process and on the same in-memory
data, times

- ``stock``: pycocotools ``COCO`` + ``loadRes`` + ``COCOeval`` evaluate/accumulate/summarize
  (one segm evaluation, the baseline AP only);
- ``analysis jobs=N``: :func:`analysis.seg_errors.analyze_errors` with fFP, bFP, FN: input
  validation, one matching pass, baseline + three corrected evaluations, for each ``--jobs``.

The goal (issue): the whole analysis in at most 2x the stock time. The baseline stats of the
analysis are checked to equal stock's exactly.

    python bench/bench_seg_errors.py --images 5000 --jobs 1 2 --out seg_errors_bench.json
    python bench/bench_seg_errors.py --images 200            # quick

Prints a table; with ``--out`` writes JSON atomically. Memory stays well under 8 GB at 5,000
images (about 2-3 GB peak).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import os
import platform
import resource
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

from analysis.io import write_json_atomic  # noqa: E402
from analysis.seg_errors import analyze_errors  # noqa: E402
from analysis.seg_errors.synthetic import make_synthetic_coco  # noqa: E402


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (load-independent cost)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def stock_eval(gt: dict, dt: list, keep: bool = False) -> tuple:
    """One plain pycocotools segm evaluation; returns (stats, seconds per phase), and the
    ``COCOeval`` too with ``keep``."""
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dt)
        t1 = time.perf_counter()
        ev = COCOeval(coco_gt, coco_dt, "segm")
        ev.evaluate()
        t2 = time.perf_counter()
        ev.accumulate()
        ev.summarize()
    t3 = time.perf_counter()
    times = {"load": t1 - t0, "evaluate": t2 - t1, "accumulate_summarize": t3 - t2,
             "total": t3 - t0}
    return (np.asarray(ev.stats), times, ev) if keep else (np.asarray(ev.stats), times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=5000, help="number of images (default 5000)")
    ap.add_argument("--gts", type=float, default=7.0, help="mean ground truths per image")
    ap.add_argument("--dets", type=int, default=100, help="predictions per image")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="--jobs values to time")
    ap.add_argument("--out", help="write the measurements here (JSON)")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    gt, dt = make_synthetic_coco(args.images, seed=args.seed, gts_per_image=args.gts,
                                 dets_per_image=args.dets)
    t_gen = time.perf_counter() - t
    n_gt, n_dt = len(gt["annotations"]), len(dt)
    print(f"data: {args.images} images, {n_gt} ground truths, {n_dt} predictions "
          f"(generated in {t_gen:.1f} s)", flush=True)

    # loadRes adds keys to the result dicts: give stock its own copy (not timed).
    gt_copy, dt_copy = copy.deepcopy(gt), copy.deepcopy(dt)
    c0 = cpu_seconds()
    stock_stats, stock_t = stock_eval(gt_copy, dt_copy)
    stock_t["cpu"] = cpu_seconds() - c0
    del gt_copy, dt_copy
    print(f"stock COCOeval: {stock_t['total']:.1f} s", flush=True)
    stock_stats100 = np.where(stock_stats == -1, np.nan, stock_stats * 100)

    rows = []
    for jobs in args.jobs:
        c0, t = cpu_seconds(), time.perf_counter()
        res = analyze_errors(gt, dt, types=["fFP", "bFP", "FN"], jobs=jobs)
        wall, cpu = time.perf_counter() - t, cpu_seconds() - c0
        base = np.array([res["baseline"][k] for k in res["baseline"]])
        same = bool(np.array_equal(base, stock_stats100, equal_nan=True))
        rows.append({"jobs": jobs, "seconds": wall, "ratio_to_stock": wall / stock_t["total"],
                     "cpu_seconds": cpu,
                     "phases": res["settings"]["seconds"], "baseline_equals_stock": same,
                     "baseline_AP": res["baseline"]["AP"],
                     "delta_AP": {k: v["AP"] for k, v in res["delta"].items()},
                     "counts": res["counts"]})
        print(f"analysis jobs={jobs}: {wall:.1f} s", flush=True)
        if not same:
            print("ERROR: analysis baseline differs from stock COCOeval", file=sys.stderr)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(f"{'what':<36}{'wall s':>8}{'x stock':>9}{'CPU s':>8}")
    print(f"{'stock COCOeval (baseline only)':<36}{stock_t['total']:>8.1f}{1.0:>9.2f}"
          f"{stock_t['cpu']:>8.1f}")
    for r in rows:
        label = f"analysis, 4 evaluations, jobs={r['jobs']}"
        print(f"{label:<36}{r['seconds']:>8.1f}{r['ratio_to_stock']:>9.2f}"
              f"{r['cpu_seconds']:>8.1f}")
    load = os.getloadavg()[0]
    print(f"load average at the end: {load:.1f} on {os.cpu_count()} CPUs "
          "(wall times are only comparable on an otherwise idle machine)")
    print(f"peak RSS of this process: {peak_mb:.0f} MiB; baseline AP {rows[0]['baseline_AP']:.2f}"
          " (equal to stock: " + str(all(r["baseline_equals_stock"] for r in rows)) + ")")
    if args.out:
        write_json_atomic(args.out, indent=2, obj={
            "images": args.images, "ground_truths": n_gt, "predictions": n_dt,
            "seed": args.seed, "generate_seconds": t_gen, "stock": stock_t,
            "analysis": rows, "peak_rss_mib": peak_mb, "load_average_end": os.getloadavg(),
            "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                        "platform": platform.platform()}})
    return 0 if all(r["baseline_equals_stock"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
