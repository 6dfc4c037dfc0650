"""Benchmark DenseContrastiveLoss forward+backward against a per-RoI loop like the authors'.

The loop baseline does what the authors' code does: project the WHOLE R x C x H x W map, then
for each RoI find its foreground/background with ``torch.nonzero`` (a host sync per RoI on a
GPU), skip invalid RoIs in Python, sample with ``torch.randint`` and evaluate InfoNCE with a
detached max subtracted. ``dcl_core`` samples all RoIs at once and projects only the 3K picked
pixels of each RoI.

Example (CPU, 2 threads, the Mask R-CNN sizes of the paper):

    python bench/bench_dcl_loss.py --device cpu --rois 100 512 --repeats 20 --out bench.json

Prints a table and, with ``--out``, writes JSON (atomically) with one record per
(device, R, implementation): median / quartiles of the wall time in ms over ``--repeats`` timed
runs after ``--warmup`` untimed ones, and on CUDA the peak allocated memory in MiB.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F

from analysis.io import write_json_atomic
from dcl_core import DCLSettings, DenseContrastiveLoss


def loop_loss(module: DenseContrastiveLoss, features: torch.Tensor, masks: torch.Tensor,
              generator: torch.Generator) -> torch.Tensor:
    """Per-RoI Python loop in the authors' style; same loss definition as ``module``."""
    k, tau = module.num_samples, module.temperature
    features, masks = features[: module.max_rois], masks[: module.max_rois]
    projected = module.projection(features) if module.projection is not None else features
    projected = F.normalize(projected, dim=1).flatten(2)  # [R, C, HW]
    # unbind, not projected[i]: autograd's select backward would write a full-size zero
    # gradient per RoI (O(R^2) memory traffic), an artefact that would flatter dcl_core.
    per_roi = projected.unbind(0)
    losses = []
    for i, roi_features in enumerate(per_roi):
        flat_mask = masks[i].flatten()
        fg = torch.nonzero(flat_mask).squeeze(1)
        bg = torch.nonzero(~flat_mask).squeeze(1)
        if fg.numel() <= k or bg.numel() <= k:
            continue
        dev = features.device
        a = fg[torch.randint(fg.numel(), (k,), device=dev, generator=generator)]
        p = fg[torch.randint(fg.numel(), (k,), device=dev, generator=generator)]
        n = bg[torch.randint(bg.numel(), (k,), device=dev, generator=generator)]
        fa, fp, fn = roi_features[:, a].T, roi_features[:, p].T, roi_features[:, n].T
        logit_ap = fa @ fp.T / tau  # [K, K]
        logit_an = fa @ fn.T / tau  # [K, K]
        shift = torch.maximum(logit_ap.max(1, keepdim=True).values,
                              logit_an.max(1, keepdim=True).values).detach()
        e_ap = torch.exp(logit_ap - shift)
        e_an = torch.exp(logit_an - shift).sum(1, keepdim=True)
        losses.append((-torch.log(e_ap / (e_ap + e_an))).mean())
    if not losses:
        return features.sum() * 0.0
    return torch.stack(losses).mean() * module.loss_weight


def make_masks(r: int, size: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """bool [R, size, size] ellipses covering ~10-60 % of each RoI, like cropped instance masks."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centre = torch.rand(r, 2, generator=generator) * size * 0.4 + size * 0.3
    radius = torch.rand(r, 2, generator=generator) * size * 0.3 + size * 0.15
    dy = (yy[None] - centre[:, 0, None, None]) / radius[:, 0, None, None]
    dx = (xx[None] - centre[:, 1, None, None]) / radius[:, 1, None, None]
    return (dy ** 2 + dx ** 2 <= 1.0).to(device)


def time_step(step: Callable[[], torch.Tensor], device: torch.device, warmup: int,
              repeats: int) -> Dict[str, float]:
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        step()
    sync()
    times_ms: List[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        sync()
        times_ms.append((time.perf_counter() - start) * 1e3)
    quartiles = statistics.quantiles(times_ms, n=4) if repeats >= 2 else [times_ms[0]] * 3
    result = {"median_ms": statistics.median(times_ms), "q1_ms": quartiles[0],
              "q3_ms": quartiles[2], "min_ms": min(times_ms), "repeats": repeats}
    if device.type == "cuda":
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        sync()
        result["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        result["step_extra_peak_mib"] = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    return result


def bench_one(device: torch.device, r: int, args: argparse.Namespace) -> List[Dict]:
    torch.manual_seed(0)
    module = DenseContrastiveLoss(args.channels, num_samples=args.num_samples,
                                  max_rois=args.max_rois).to(device)
    cpu_gen = torch.Generator().manual_seed(1)
    features = torch.randn(r, args.channels, args.size, args.size, generator=cpu_gen)
    features = features.to(device).requires_grad_()
    masks = make_masks(r, args.size, cpu_gen, device)
    generator = torch.Generator(device=device).manual_seed(2)

    def vectorised():
        features.grad = None
        module.zero_grad(set_to_none=True)
        loss = module(features, masks, generator=generator)
        loss.backward()
        return loss

    def loop():
        features.grad = None
        module.zero_grad(set_to_none=True)
        loss = loop_loss(module, features, masks, generator)
        loss.backward()
        return loss

    records = []
    for name, step in (("dcl_core", vectorised), ("per_roi_loop", loop)):
        timing = time_step(step, device, args.warmup, args.repeats)
        loss_value = float(step().detach())
        records.append({"impl": name, "device": str(device), "rois": r,
                        "rois_used": min(r, args.max_rois), "channels": args.channels,
                        "size": args.size, "num_samples": args.num_samples,
                        "loss": loss_value, **timing})
    return records


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", nargs="+", default=None,
                        help="devices to run on (default: cpu, plus cuda when available)")
    parser.add_argument("--rois", type=int, nargs="+", default=[100], help="R values")
    parser.add_argument("--max-rois", type=int, default=None,
                        help="RoI cap of the loss (default: no cap, so every R is timed fully)")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--size", type=int, default=28, help="H = W of the RoI map")
    parser.add_argument("--num-samples", type=int, default=DCLSettings().num_samples,
                        help="K (default: %(default)s, dcl_core's)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args(argv)
    if args.max_rois is None:
        args.max_rois = max(args.rois)
    if args.device is None:
        args.device = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    check_run_arguments(parser, args)
    return args


def check_run_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse (``parser.error``) bad ``--repeats`` / ``--warmup`` / ``--rois`` and a CUDA
    ``--device`` on a machine without CUDA; shared by the loss benchmarks."""
    if args.repeats < 1 or args.warmup < 0 or min(args.rois) < 1:
        parser.error("--repeats and every --rois must be >= 1, --warmup >= 0")
    for dev in args.device:
        if torch.device(dev).type == "cuda" and not torch.cuda.is_available():
            parser.error(f"--device {dev}: CUDA is not available on this machine")


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    records: List[Dict] = []
    for dev in args.device:
        for r in args.rois:
            records.extend(bench_one(torch.device(dev), r, args))

    header = f"{'device':<8}{'R':>5}  {'impl':<14}{'median ms':>10}{'q1-q3 ms':>18}" \
             f"{'peak MiB':>10}{'speedup':>9}"
    print(header)
    print("-" * len(header))
    for rec in records:
        loop = next(x for x in records if x["impl"] == "per_roi_loop"
                    and x["device"] == rec["device"] and x["rois"] == rec["rois"])
        peak = f"{rec['peak_mib']:.1f}" if "peak_mib" in rec else "-"
        print(f"{rec['device']:<8}{rec['rois']:>5}  {rec['impl']:<14}{rec['median_ms']:>10.2f}"
              f"{rec['q1_ms']:>9.2f}-{rec['q3_ms']:<8.2f}{peak:>10}"
              f"{loop['median_ms'] / rec['median_ms']:>8.2f}x")
    if args.out:
        write_records(args.out, records)
    return 0


def write_records(path: str, records: List[Dict]) -> None:
    """Write the benchmark's records with the environment and argv, atomically, as JSON."""
    env = {"torch": torch.__version__, "python": platform.python_version(),
           "threads": torch.get_num_threads(), "machine": platform.machine(),
           "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
           "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    write_json_atomic(path, indent=2, obj={"environment": env, "argv": sys.argv[1:],
                                           "records": records})
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
