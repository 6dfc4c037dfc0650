"""Benchmark loading and validating COCO-format results, RLE string check included.

Every compressed RLE string is decoded (numpy, no masks) and must add up to height*width
before pycocotools sees it (issue 15: a string that does not made pycocotools loop forever).
This times, on synthetic COCO-val-like masks (480x640 images, about 260 characters per mask;
``analysis/seg_errors/synthetic.py``), with the predictions of ``--images`` images repeated up
to ``--predictions`` entries:

- ``load_results``: validation of every entry, the RLE check included;
- ``rle_pixel_totals``: the RLE check alone;
- ``pycocotools area``: pycocotools decoding the same strings in C (``mask.area``), for scale.

    python bench/bench_load_results.py --predictions 1000000
    python bench/bench_load_results.py --predictions 100000 --out load_bench.json

Wall and CPU seconds are printed (CPU seconds are the load-independent comparison); with
``--out`` the measurements are written as JSON, atomically.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from analysis.coco_format import load_ground_truth, load_results  # noqa: E402
from analysis.io import write_json_atomic  # noqa: E402
from analysis.rle import rle_area, rle_pixel_totals  # noqa: E402
from analysis.seg_errors.synthetic import make_synthetic_coco  # noqa: E402


def timed(fn) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=100, help="distinct images (default 100)")
    ap.add_argument("--predictions", type=int, default=1_000_000,
                    help="result entries, the images' predictions repeated (default 1,000,000)")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs of each (default 2)")
    ap.add_argument("--out", help="write the measurements here (JSON)")
    args = ap.parse_args(argv)

    gt, dt = make_synthetic_coco(args.images, seed=0)
    dt = (dt * (args.predictions // len(dt) + 1))[:args.predictions]
    g = load_ground_truth(gt)
    rles = [d["segmentation"] for d in dt]
    strings = [r["counts"] for r in rles]
    chars = sum(map(len, strings))
    print(f"{len(dt)} predictions on {args.images} images, {chars} RLE characters", flush=True)

    rows = {"load_results": [], "rle_pixel_totals": [], "pycocotools area": []}
    for _ in range(args.repeats):
        rows["load_results"].append(timed(lambda: load_results(dt, g)))
        rows["rle_pixel_totals"].append(timed(lambda: rle_pixel_totals(strings)))
        rows["pycocotools area"].append(timed(lambda: rle_area(rles)))
    print(f"{'what':<20}" + "".join(f"{'wall s':>9}{'CPU s':>8}" for _ in range(args.repeats)))
    for name, runs in rows.items():
        print(f"{name:<20}" + "".join(f"{r['wall_s']:>9.2f}{r['cpu_s']:>8.2f}" for r in runs))
    load = os.getloadavg()[0]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"load average at the end: {load:.1f} on {os.cpu_count()} CPUs; "
          f"peak RSS {peak_mb:.0f} MiB")
    if args.out:
        write_json_atomic(args.out, indent=2, obj={
            "images": args.images, "predictions": len(dt), "rle_characters": chars,
            "timings": rows, "peak_rss_mib": peak_mb, "load_average_end": os.getloadavg(),
            "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                        "platform": platform.platform()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
