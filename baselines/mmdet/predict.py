#!/usr/bin/env python
"""Write a dcl_mmdet model's predictions on a COCO-format set as a COCO results JSON.

    python baselines/mmdet/predict.py CONFIG CHECKPOINT --val-data JSON:IMAGES \\
        --predictions-out FILE [--loss NAME KEY=VALUE ...] \\
        [--cfg-options KEY=VALUE ...] [--launcher pytorch]

FILE (written atomically) is a list of ``{image_id, category_id, bbox, score, segmentation}``
with the dataset's own category ids and RLE segmentations (``counts`` a str), for every image of
the set. Missing or malformed paths, a checkpoint trained on other classes, or one that torch's
weights-only loading refuses (damaged, or carrying code) give one line on stderr (exit status
2). mmengine's logs go to a temporary folder that is removed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def parse_args(argv=None):
    from mmengine.config import DictAction

    from dcl_core.registry import LOSS_OPTION_HELP

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--val-data", required=True, metavar="JSON:IMAGES")
    parser.add_argument("--predictions-out", required=True, type=Path, metavar="FILE")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, metavar="KEY=VALUE")
    parser.add_argument("--loss", nargs="+", metavar="NAME|KEY=VALUE", help=LOSS_OPTION_HELP)
    parser.add_argument("--seed", type=int, metavar="N",
                        help="the run's seed (randomness.seed); default: the config's")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    return parser.parse_args(argv)


def build_config(args, work_dir: str):
    from analysis.io import input_overwritten_by
    from dcl_mmdet.checkpoint import checkpoint_classes
    from dcl_mmdet.data import parse_data_arg
    from dcl_mmdet.runner_setup import (CliError, check_contrast_cfg, load_config, set_dataset,
                                        set_num_classes)

    if not args.checkpoint.is_file():
        raise CliError(f"checkpoint not found: {args.checkpoint}")
    cfg = load_config(args.config, args.cfg_options, args.loss, args.seed)
    check_contrast_cfg(cfg.model)
    classes, ids = set_dataset(cfg.test_dataloader, args.val_data, "--val-data")
    inputs = [args.config, args.checkpoint, parse_data_arg(args.val_data, "--val-data")[0]]
    if hit := input_overwritten_by(args.predictions_out, inputs):  # writing it destroys it
        raise CliError(f"--predictions-out {args.predictions_out} is an input of this run "
                       f"({hit}); write to another file")
    trained = checkpoint_classes(args.checkpoint)
    if trained is not None and trained != classes:
        raise CliError(f"{args.checkpoint} was trained on {len(trained)} other classes than "
                       f"the {len(classes)} of --val-data")
    set_num_classes(cfg, len(classes))
    cfg.test_evaluator = dict(type="CocoResultsWriter",
                              outfile=str(args.predictions_out.resolve()), category_ids=ids)
    cfg.load_from = str(args.checkpoint)
    cfg.resume = False
    cfg.work_dir = work_dir
    cfg.launcher = args.launcher
    # Training-only parts need no data here.
    cfg.train_dataloader = None
    cfg.train_cfg = None
    cfg.optim_wrapper = None
    cfg.param_scheduler = None
    return cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    from dcl_mmdet.checkpoint import allow_mmengine_checkpoints
    from dcl_mmdet.runner_setup import CliError

    allow_mmengine_checkpoints()

    with tempfile.TemporaryDirectory(prefix="dcl_mmdet_predict_") as work_dir:
        try:
            cfg = build_config(args, work_dir)
        except CliError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        from mmengine.runner import Runner

        from dcl_core.sampling import InfeasibleSamplingError

        try:
            runner = Runner.from_cfg(cfg)
        except InfeasibleSamplingError as e:  # raised while the model is built
            print(f"error: {e}", file=sys.stderr)
            return 2
        metrics = runner.test()
    print(f"predictions: {args.predictions_out} ({int(metrics.get('predictions/count', 0))} instances)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
