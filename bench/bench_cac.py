"""Benchmark one forward+backward of the CAC mask-head loss (``CACMaskLoss``) against DCL
(``DenseContrastiveLoss``) on the same RoI batch, each with its default settings, and CAC with
``projected_pixels="anchors"`` (``cac_anchors``: the projection on the anchors only).

Both get the same ``[R, 256, 28, 28]`` features and ellipse masks (``bench_dcl_loss.make_masks``);
CAC also gets mask logits that agree with the masks at about 80 % of the pixels (so both hard
and easy pools are filled). With ``--semantic`` it also times the semantic form (``CACLoss``)
on one Cityscapes GPU batch at the official sizes: 2 images, 256-d embeddings and 19 classes at
128 x 256 (stride 4 of a 512 x 1024 crop).

Example (the numbers in the CAC report; one thread):

    OMP_NUM_THREADS=1 python bench/bench_cac.py --threads 1 --rois 100 256 --semantic \\
        --out cac_bench.json

Prints a table and, with ``--out``, writes JSON (atomically): median / quartiles of the wall
time in ms over ``--repeats`` timed runs after ``--warmup`` untimed ones, and the median process
CPU time (``cpu_median_ms``), per (device, R, loss).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Dict, List

import torch

for _path in (os.path.dirname(os.path.abspath(__file__)),
              os.path.dirname(os.path.dirname(os.path.abspath(__file__)))):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from bench_dcl_loss import (check_run_arguments, make_masks, time_step,  # noqa: E402
                            write_records)

from dcl_core import (CACLoss, CACMaskLoss, CACSettings, DCLSettings,  # noqa: E402
                      DenseContrastiveLoss)


def _step(module, inputs, leaf, cpu_ms: List[float]):
    """One forward+backward; appends its process CPU time (ms) to ``cpu_ms``, which on a
    shared machine tracks the work better than the wall time."""
    def run():
        start = time.process_time()
        leaf.grad = None
        module.zero_grad(set_to_none=True)
        loss = module(*inputs)
        loss.backward()
        cpu_ms.append((time.process_time() - start) * 1e3)
        return loss
    return run


def _timed(step, cpu_ms: List[float], device: torch.device, args: argparse.Namespace) -> Dict:
    timing = time_step(step, device, args.warmup, args.repeats)
    timing["cpu_median_ms"] = statistics.median(cpu_ms[-args.repeats:])
    return timing


def bench_rois(device: torch.device, r: int, args: argparse.Namespace) -> List[Dict]:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    c, size = args.channels, args.size
    features = torch.randn(r, c, size, size, generator=gen).to(device).requires_grad_()
    masks = make_masks(r, size, gen, device)
    agree = torch.rand(r, size, size, generator=gen).to(device) < 0.8
    logits = (torch.rand(r, size, size, generator=gen).to(device) * 4 + 0.5) \
        * torch.where(masks == agree, 1.0, -1.0)
    dcl = DenseContrastiveLoss.from_settings(DCLSettings(), c).to(device)
    cac = CACMaskLoss.from_settings(CACSettings(), c).to(device)
    cac_anchors = CACMaskLoss.from_settings(CACSettings(projected_pixels="anchors"), c).to(device)
    records = []
    for name, module, inputs in (("dcl", dcl, (features, masks)),
                                 ("cac", cac, (features, masks, logits)),
                                 ("cac_anchors", cac_anchors, (features, masks, logits))):
        cpu_ms: List[float] = []
        step = _step(module, inputs, features, cpu_ms)
        timing = _timed(step, cpu_ms, device, args)
        records.append({"loss": name, "device": str(device), "rois": r, "channels": c,
                        "size": size, "value": float(step().detach()), **timing})
    return records


def bench_semantic(device: torch.device, args: argparse.Namespace) -> Dict:
    gen = torch.Generator().manual_seed(3)
    b, d, k, h, w = 2, 256, 19, 128, 256
    emb = torch.randn(b, d, h, w, generator=gen).to(device).requires_grad_()
    # blocky labels (8 x 8 px cells), so classes have the sizes of real regions
    labels = torch.randint(0, k, (b, h // 8, w // 8), generator=gen)
    labels = labels.repeat_interleave(8, 1).repeat_interleave(8, 2).to(device)
    seg = (torch.randn(b, k, h, w, generator=gen)
           + 3 * torch.nn.functional.one_hot(labels.cpu(), k).permute(0, 3, 1, 2)).to(device)
    weight = torch.randn(b, k, h, w, generator=gen).to(device).requires_grad_()
    module = CACLoss(loss_weight=0.4)
    cpu_ms: List[float] = []
    step = _step(module, (emb, labels, seg, weight), emb, cpu_ms)
    timing = _timed(step, cpu_ms, device, args)
    return {"loss": "cac_semantic", "device": str(device), "batch": b, "channels": d,
            "size": [h, w], "classes": k, "anchors": module.last_num_anchors,
            "value": float(step().detach()), **timing}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", nargs="+", default=["cpu"], help="devices (default: cpu)")
    parser.add_argument("--rois", type=int, nargs="+", default=[100], help="R values")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--size", type=int, default=28, help="H = W of the RoI map")
    parser.add_argument("--semantic", action="store_true",
                        help="also time the semantic form on one Cityscapes GPU batch")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args(argv)
    check_run_arguments(parser, args)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    records: List[Dict] = []
    for dev in args.device:
        for r in args.rois:
            records.extend(bench_rois(torch.device(dev), r, args))
        if args.semantic:
            records.append(bench_semantic(torch.device(dev), args))
    header = (f"{'device':<8}{'R':>5}  {'loss':<14}{'median ms':>10}{'q1-q3 ms':>18}"
              f"{'vs DCL':>8}{'CPU ms':>10}{'vs DCL':>8}")
    print(header)
    print("-" * len(header))
    for rec in records:
        dcl = next((x for x in records if x["loss"] == "dcl" and x["device"] == rec["device"]
                    and x.get("rois") == rec.get("rois")), None)
        ratio = f"{rec['median_ms'] / dcl['median_ms']:.2f}x" if dcl else "-"
        cpu_ratio = f"{rec['cpu_median_ms'] / dcl['cpu_median_ms']:.2f}x" if dcl else "-"
        print(f"{rec['device']:<8}{rec.get('rois', '-'):>5}  {rec['loss']:<14}"
              f"{rec['median_ms']:>10.2f}{rec['q1_ms']:>9.2f}-{rec['q3_ms']:<8.2f}{ratio:>8}"
              f"{rec['cpu_median_ms']:>10.2f}{cpu_ratio:>8}")
    if args.out:
        write_records(args.out, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
