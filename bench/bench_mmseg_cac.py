"""Benchmark one mmseg training step (forward, losses, backward, SGD step) of a baseline config
against its CAC config on the same batch: the cost CAC adds (projection head, weight branch and
its CE, anchor sampling and the pair-weighted contrast).

The pairs: ``embedded`` (HRNetV2-W18-Small FCN, the embedded configs, 18 classes, 256 x 256
crops) and ``paper`` (HRNetV2-W48 FCN 40k, the matched Cityscapes baseline vs CAC, 19 classes,
SyncBN as BN on one process, OHEM and class weights as configured; ``--size`` sets the crop,
512 1024 is the paper's). Both models get the same random images and a label map of 4 vertical
bands of classes (with an ignored corner), seeded.

Example (the numbers in the CAC report; one thread):

    OMP_NUM_THREADS=1 python bench/bench_mmseg_cac.py --threads 1 --pair embedded \\
        --out mmseg_cac_bench.json

Prints a table and, with ``--out``, writes JSON (atomically): per config the median / quartiles
of the wall time and the median process CPU time per step over ``--repeats`` timed steps after
``--warmup`` untimed ones, and CAC's relative extra cost.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List

import torch

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO / "bench", REPO, REPO / "baselines/mmdet", REPO / "baselines/mmseg"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench_dcl_loss import time_step, write_records  # noqa: E402

CONFIGS = REPO / "baselines/mmseg/configs"
PAIRS = {
    "embedded": ("embedded/fcn_hr18s_embedded_baseline.py", "embedded/fcn_hr18s_embedded_cac.py",
                 18, (256, 256)),
    "paper": ("cityscapes/fcn_hr48_4xb2-40k_cityscapes-512x1024_baseline.py",
              "cityscapes/fcn_hr48_4xb2-40k_cityscapes-512x1024_cac.py", 19, (512, 1024)),
}


def build(config: str, num_classes: int):
    """The config's segmentor on one process (SyncBN -> BN, no pretrained download) and SGD."""
    import dcl_mmseg  # noqa: F401  (registers the plug-in)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    init_default_scope("mmseg")
    cfg = Config.fromfile(str(CONFIGS / config))
    bn = dict(type="BN", requires_grad=True)
    cfg.model.pretrained = None
    cfg.model.backbone.norm_cfg = bn
    heads = cfg.model.decode_head
    for head in heads if isinstance(heads, list) else [heads]:
        head.norm_cfg, head.num_classes = bn, num_classes
    model = MODELS.build(cfg.model)
    model.train()
    optim = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    return model, optim


def make_batch(batch: int, size, num_classes: int, seed: int = 0):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    gen = torch.Generator().manual_seed(seed)
    h, w = size
    images = torch.rand(batch, 3, h, w, generator=gen)
    samples = []
    for _ in range(batch):
        label = torch.zeros(1, h, w, dtype=torch.int64)
        for k in range(4):
            label[..., k * w // 4:(k + 1) * w // 4] = k % num_classes
        label[..., : h // 8, : w // 8] = 255
        s = SegDataSample(gt_sem_seg=PixelData(data=label))
        s.set_metainfo(dict(img_shape=(h, w), pad_shape=(h, w), ori_shape=(h, w)))
        samples.append(s)
    return images, samples


def bench_pair(args) -> List[Dict]:
    base_cfg, cac_cfg, k, default_size = PAIRS[args.pair]
    size = tuple(args.size) if args.size else default_size
    images, samples = make_batch(args.batch, size, k)
    records = []
    for impl, config in (("baseline", base_cfg), ("cac", cac_cfg)):
        torch.manual_seed(0)
        model, optim = build(config, k)
        cpu_ms: List[float] = []

        def step():
            start = time.process_time()
            optim.zero_grad(set_to_none=True)
            losses = model.loss(images, samples)
            total = sum(v for name, v in losses.items() if "loss" in name)
            total.backward()
            optim.step()
            cpu_ms.append((time.process_time() - start) * 1e3)
            return total

        timing = time_step(step, torch.device("cpu"), args.warmup, args.repeats)
        timing["cpu_median_ms"] = statistics.median(cpu_ms[-args.repeats:])
        records.append({"pair": args.pair, "impl": impl, "config": config, "batch": args.batch,
                        "size": list(size), "classes": k, **timing})
    base = records[0]
    for rec in records:
        rec["extra_cpu_pct"] = 100.0 * (rec["cpu_median_ms"] / base["cpu_median_ms"] - 1.0)
    return records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", choices=sorted(PAIRS), default="embedded")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                        help="crop size (default: the pair's config crop)")
    parser.add_argument("--batch", type=int, default=2, help="images per step (per GPU: 2)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or args.batch < 1:
        parser.error("--repeats and --batch must be >= 1, --warmup >= 0")
    torch.set_num_threads(args.threads)
    records = bench_pair(args)
    print(f"{'config':<10}{'median ms':>11}{'q1-q3 ms':>20}{'cpu ms':>10}{'extra cpu':>11}")
    for rec in records:
        print(f"{rec['impl']:<10}{rec['median_ms']:>11.1f}{rec['q1_ms']:>10.1f}-{rec['q3_ms']:<9.1f}"
              f"{rec['cpu_median_ms']:>10.1f}{rec['extra_cpu_pct']:>10.1f}%")
    if args.out:
        write_records(args.out, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
