#!/usr/bin/env python
"""Score a dcl_mmseg model on a validation split with mmseg's mIoU (``IoUMetric``).

    python baselines/mmseg/predict.py CONFIG CHECKPOINT --data DATA --metrics-out FILE \\
        [--split val] [--cfg-options KEY=VALUE ...] [--launcher pytorch]

Runs the config's test pipeline (whole-image inference) over DATA's split and writes FILE
(``metrics_miou.json``: mIoU, mAcc, aAcc and per-class IoU in percent, over the dataset's
classes; Cityscapes: its 19 trainId classes) and, beside it, the per-image pixel counts
(``*_areas.npz``), both atomically (dcl_mmseg.IoUMetricWriter). Missing or malformed paths, a
checkpoint trained on other classes, or one that torch's weights-only loading refuses give one
line on stderr (exit status 2). mmengine's logs go to a temporary folder that is removed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def parse_args(argv=None):
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--data", required=True, type=Path, metavar="DIR")
    parser.add_argument("--split", default="val")
    parser.add_argument("--metrics-out", required=True, type=Path, metavar="FILE")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, metavar="KEY=VALUE")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    return parser.parse_args(argv)


def build_config(args, work_dir: str):
    from analysis.io import input_overwritten_by
    from dcl_mmdet.checkpoint import checkpoint_classes
    from dcl_mmdet.runner_setup import load_config
    from dcl_mmseg.runner_setup import CliError, set_data, set_num_classes

    if not args.checkpoint.is_file():
        raise CliError(f"checkpoint not found: {args.checkpoint}")
    trained = checkpoint_classes(args.checkpoint)  # refuses what weights-only loading refuses
    cfg = load_config(args.config, args.cfg_options)
    classes = set_data(cfg.test_dataloader, args.data, args.split)
    if hit := input_overwritten_by(args.metrics_out, [args.config, args.checkpoint]):
        raise CliError(f"--metrics-out {args.metrics_out} is an input of this run ({hit})")
    if classes is not None:
        if trained is not None and trained != classes:
            raise CliError(f"{args.checkpoint} was trained on {len(trained)} other classes than "
                           f"the {len(classes)} of --data")
        set_num_classes(cfg, len(classes))
    cfg.test_evaluator = dict(type="IoUMetricWriter", outfile=str(args.metrics_out.resolve()))
    cfg.load_from = str(args.checkpoint)
    cfg.resume = False
    cfg.work_dir = work_dir
    cfg.launcher = args.launcher
    # Training-only parts need no data here.
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = cfg.param_scheduler = None
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.custom_hooks = []
    return cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    from dcl_mmdet.checkpoint import allow_mmengine_checkpoints
    from dcl_mmseg.runner_setup import CliError

    allow_mmengine_checkpoints()
    with tempfile.TemporaryDirectory(prefix="dcl_mmseg_predict_") as work_dir:
        try:
            cfg = build_config(args, work_dir)
        except CliError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        from mmengine.runner import Runner

        metrics = Runner.from_cfg(cfg).test()
    print(f"mIoU {metrics.get('mIoU_unrounded')}: {args.metrics_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
