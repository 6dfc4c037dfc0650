#!/usr/bin/env python
"""Time a detectron2 training step (Mask R-CNN, Swin, SparseInst) with and without DCL.

The model is built from a project config (random init), fed a fixed synthetic batch (images of
the given size with elliptical instances as bit masks, boxes from the masks), and trained with
SGD for ``--warmup`` then ``--iters`` timed steps; the median step time is reported for the
baseline (``LOSS_WEIGHT 0``: no loss module) and for DCL (the config's lambda, K, tau), with
peak memory: ``torch.cuda.max_memory_allocated`` on CUDA, the process's peak RSS on CPU (RSS is a
high-water mark over the whole process, so the DCL run is measured in a fresh process).

    python bench/bench_train_step.py --config baselines/detectron2/configs/embedded/mask_rcnn_R_18_FPN.yaml
    python bench/bench_train_step.py --device cuda --size 1024 2048 --images 2 \
        --config baselines/detectron2/configs/cityscapes/mask_rcnn_R_50_FPN.yaml

``--contrastmask [KEY=VALUE ...]`` (Mask R-CNN) also times ContrastMask's loss alone and with
DCL (the same-baseline comparison's variants), with those ContrastMask settings besides
``detach_features=False ramp_epochs=0``, e.g. the embedded scale's
``--contrastmask num_encoder_convs=1 embed_channels=64``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch


VARIANTS = ("baseline", "dcl", "contrastmask", "dcl+contrastmask")


def contrastmask_words(args) -> list[str]:
    """The ContrastMask part of the ``--loss`` words of the ContrastMask variants."""
    return ["contrastmask", "detach_features=False", "ramp_epochs=0", *args.contrastmask]


def run_one(args, variant: str) -> dict:
    with_dcl = variant in ("dcl", "dcl+contrastmask")
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    from dcl_detectron2 import add_project_config
    from dcl_detectron2.config import settings_from_node
    from dcl_detectron2.synthetic import synthetic_batch

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    cfg = add_project_config(get_cfg())
    cfg.merge_from_file(args.config, allow_unsafe=False)
    cfg.MODEL.DEVICE = args.device
    cfg.MODEL.WEIGHTS = ""
    if cfg.MODEL.META_ARCHITECTURE == "SparseInst":
        node = cfg.MODEL.SPARSE_INST.CONTRAST_LOSS
    else:  # Mask R-CNN, any backbone: the contrast heads, with LOSS_WEIGHT 0 as the baseline
        cfg.MODEL.ROI_HEADS.NAME = "ContrastRoIHeads"
        cfg.MODEL.ROI_MASK_HEAD.NAME = "ContrastConvUpsampleHead"
        node = cfg.MODEL.ROI_MASK_HEAD.CONTRAST_LOSS
    if not with_dcl:
        node.LOSS_WEIGHT = 0.0
    elif args.lambda_ is not None:
        node.LOSS_WEIGHT = args.lambda_
    if with_dcl and node.LOSS_WEIGHT <= 0:
        raise SystemExit(f"error: {args.config}: the DCL run needs a loss weight > 0 (--lambda)")
    if variant.endswith("contrastmask"):
        from dcl_core import parse_losses
        from dcl_detectron2.config import apply_loss_settings

        dcl_settings = [settings_from_node(node)] if with_dcl else []
        try:
            apply_loss_settings(cfg, dcl_settings + list(parse_losses(contrastmask_words(args))))
        except (TypeError, ValueError) as e:
            raise SystemExit(f"error: --contrastmask: {e}") from None
    model = build_model(cfg).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    height, width = args.size
    batch = synthetic_batch(args.images, height, width, num_classes=cfg.MODEL.ROI_HEADS.NUM_CLASSES,
                            device=args.device)
    cuda = args.device.startswith("cuda")

    from detectron2.utils.events import EventStorage

    times, cpu_times, loss_names = [], [], None
    with EventStorage(0):
        for i in range(args.warmup + args.iters):
            if cuda and i == args.warmup:
                torch.cuda.reset_peak_memory_stats()
            if cuda:
                torch.cuda.synchronize()
            start, start_cpu = time.perf_counter(), time.process_time()
            losses = model(batch)
            total = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            if cuda:
                torch.cuda.synchronize()
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
                cpu_times.append(time.process_time() - start_cpu)
            loss_names = sorted(losses)
            if not torch.isfinite(total):
                raise RuntimeError(f"non-finite loss at step {i}: {losses}")
    if cuda:
        peak, peak_kind = torch.cuda.max_memory_allocated() / 2**20, "cuda_max_memory_allocated"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        peak_kind = "cpu_peak_rss"
    return {
        "dcl": with_dcl,
        "variant": variant,
        "median_step_s": statistics.median(times),
        "mean_step_s": statistics.fmean(times),
        # the process's CPU time: on a shared CPU steadier than the wall time (other processes
        # stretch the wall time); with --threads 1 comparable across variants
        "median_step_cpu_s": statistics.median(cpu_times),
        "steps": len(times),
        "peak_mem_mib": peak,
        "peak_mem_kind": peak_kind,
        "losses": loss_names,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=4, help="images per step")
    parser.add_argument("--size", type=int, nargs=2, default=(256, 320), metavar=("H", "W"))
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lambda", dest="lambda_", type=float, default=None,
                        help="override the config's loss weight for the DCL run")
    parser.add_argument("--contrastmask", nargs="*", default=None, metavar="KEY=VALUE",
                        help="also time ContrastMask's loss alone and with DCL (Mask R-CNN), "
                             "with these ContrastMask settings")
    parser.add_argument("--only", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    args = parser.parse_args(argv)

    if args.only:  # child process: one measurement, JSON on stdout
        print(json.dumps(run_one(args, args.only)))
        return 0
    results = {}
    for variant in VARIANTS[:2] if args.contrastmask is None else VARIANTS:
        # A fresh process per variant: peak RSS and allocator caches must not carry over.
        cmd = [sys.executable, __file__, "--only", variant] + [a for a in (argv or sys.argv[1:])]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[variant] = json.loads(out.strip().splitlines()[-1])
    base, dcl = results["baseline"], results["dcl"]
    summary = {
        "config": str(args.config), "device": args.device, "images": args.images,
        "size": list(args.size), "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        **results,
        "step_time_ratio": dcl["median_step_s"] / base["median_step_s"],
        "peak_mem_ratio": dcl["peak_mem_mib"] / base["peak_mem_mib"],
        # every variant against the baseline
        "ratios": {name: {"step_time": r["median_step_s"] / base["median_step_s"],
                          "step_cpu_time": r["median_step_cpu_s"] / base["median_step_cpu_s"],
                          "peak_mem": r["peak_mem_mib"] / base["peak_mem_mib"]}
                   for name, r in results.items()},
    }
    print(f"{'variant':<18} {'median step (s)':>16} {'CPU (s)':>9} {'peak mem (MiB)':>15}"
          f"  [{base['peak_mem_kind']}]")
    for name, r in results.items():
        print(f"{name:<18} {r['median_step_s']:>16.4f} {r['median_step_cpu_s']:>9.4f}"
              f" {r['peak_mem_mib']:>15.1f}")
    for name, ratio in summary["ratios"].items():
        if name != "baseline":
            print(f"{name} / baseline: step time x{ratio['step_time']:.3f} (CPU time "
                  f"x{ratio['step_cpu_time']:.3f}), peak memory x{ratio['peak_mem']:.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
