"""Benchmark the image bootstrap (1,000 resamples) against ONE stock pycocotools segm COCOeval.

Same COCO-val-scale synthetic data as ``bench/bench_seg_errors.py`` (default 5,000 images,
about 7 ground truths and 100 predictions per image). In one process, on the same data, times

- ``stock``: pycocotools ``COCO`` + ``loadRes`` + ``COCOeval`` evaluate/accumulate/summarize;
- ``bootstrap``: :class:`analysis.bootstrap.MatchArrays` from that ``COCOeval``'s ``evalImgs``
  (the matching is the evaluation's own: the workflow's evaluate step runs it anyway), the
  :class:`~analysis.bootstrap.Resampler` layout, and the stats of ``--resamples`` resamples.

The goal (issue 14): the bootstrap in at most 2x the stock time (wall and CPU time are both
reported; on a busy machine only CPU time compares). Also checked: the bootstrap's identity
resample equals stock's stats. Measured 2026-11-30 on the shared 2-core machine (load ~6,
``nice``): stock 105.9 s wall / 51.5 s CPU, bootstrap 178.2 s wall / 67.0 s CPU (extract 6.3,
layout 2.1, 1,000 resamples 169.8 s wall): 1.68x wall, 1.30x CPU.

    nice python bench/bench_bootstrap.py --images 5000 --out bootstrap_bench.json
    python bench/bench_bootstrap.py --images 300 --resamples 200        # quick
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (ROOT, os.path.join(ROOT, "bench")):
    if p not in sys.path:
        sys.path.insert(0, p)

from bench_seg_errors import cpu_seconds, stock_eval  # noqa: E402

from analysis.bootstrap import (MatchArrays, Resampler, percentile_interval,  # noqa: E402
                                resample_weights)
from analysis.io import write_json_atomic  # noqa: E402
from analysis.seg_errors.synthetic import make_synthetic_coco  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--gts", type=float, default=7.0, help="mean ground truths per image")
    ap.add_argument("--dets", type=int, default=100, help="predictions per image")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the measurements here (JSON)")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    gt, dt = make_synthetic_coco(args.images, seed=args.seed, gts_per_image=args.gts,
                                 dets_per_image=args.dets)
    print(f"data: {args.images} images, {len(gt['annotations'])} ground truths, {len(dt)} "
          f"predictions (generated in {time.perf_counter() - t:.1f} s)", flush=True)

    c0 = cpu_seconds()
    stock_stats, stock_t, ev = stock_eval(gt, dt, keep=True)
    stock_t["cpu"] = cpu_seconds() - c0
    print(f"stock COCOeval: {stock_t['total']:.1f} s", flush=True)

    c0 = cpu_seconds()
    t0 = time.perf_counter()
    m = MatchArrays.from_cocoeval(ev)
    t1 = time.perf_counter()
    resampler = Resampler(m)
    t2 = time.perf_counter()
    weights = resample_weights(m.n_images, args.resamples, seed=0)
    stats, per_class = resampler.stats(weights)
    t3 = time.perf_counter()
    boot = {"extract": t1 - t0, "layout": t2 - t1, "resamples": t3 - t2, "total": t3 - t0,
            "cpu": cpu_seconds() - c0, "positions": int(resampler.n_cols),
            "fp_entries": int(resampler.fp.nnz)}
    ident, _ = resampler.stats(np.ones((1, m.n_images), np.int64))
    stock100 = np.where(stock_stats == -1, np.nan, stock_stats * 100)
    same = bool(np.allclose(ident[0], stock100, rtol=0, atol=1e-9, equal_nan=True))
    ci = percentile_interval(stats)
    ratio = boot["total"] / stock_t["total"]
    print(f"bootstrap, {args.resamples} resamples: {boot['total']:.1f} s "
          f"(extract {boot['extract']:.1f}, layout {boot['layout']:.1f}, "
          f"resamples {boot['resamples']:.1f}) = {ratio:.2f} x stock", flush=True)
    print(f"CPU time: bootstrap {boot['cpu']:.1f} s, stock {stock_t['cpu']:.1f} s = "
          f"{boot['cpu'] / stock_t['cpu']:.2f} x (load-independent)")
    print(f"AP {stock100[0]:.2f} [{ci[0, 0]:.2f}, {ci[0, 1]:.2f}]; identity equals stock: {same}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.out:
        write_json_atomic(args.out, indent=2, obj={
            "images": args.images, "ground_truths": len(gt["annotations"]),
            "predictions": len(dt), "resamples": args.resamples, "stock": stock_t,
            "bootstrap": boot, "ratio_to_stock": ratio,
            "cpu_ratio_to_stock": boot["cpu"] / stock_t["cpu"], "identity_equals_stock": same,
            "AP": float(stock100[0]), "AP_ci95": ci[0].tolist(),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "load_average_end": os.getloadavg(),
            "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                        "platform": platform.platform()}})
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
