#!/usr/bin/env python
"""Train an mmdetection 3 model of the dcl_mmdet plug-in (RefineMask +/- DCL, ContrastMask).

    python baselines/mmdet/train.py CONFIG --work-dir DIR --train-data JSON:IMAGES \\
        [--val-data JSON:IMAGES] [--resume] [--loss NAME KEY=VALUE ...] \\
        [--cfg-options KEY=VALUE ...] [--launcher pytorch]

The classes come from the training JSON (so one config trains any COCO-format set), the data
are checked before anything is built, and a failure of that kind is one line on stderr
(exit status 2). ``--val-data`` only completes the saved config's test set (no evaluation
while training). Writes to DIR: mmengine's checkpoints and logs, ``train_cost.json``
(``TrainingCostHook``) and, once training has reached its last iteration, ``model_final.pth``
(a hard link to, or copy of, the last checkpoint). ``--resume`` continues from DIR's last
checkpoint (the newest that loads if the tagged one is damaged, with a warning); without it an
old ``model_final.pth`` is removed before training starts. Checkpoints and pretrained weights
are read with torch's weights-only loading (``dcl_mmdet.checkpoint``): a file that would run
code is refused in one line, and a local ``Pretrained`` file or ``load_from`` must fit the
model (``check_weights_fit``).
Several GPUs: ``torchrun --nproc_per_node N baselines/mmdet/train.py ... --launcher pytorch``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path



def parse_args(argv=None):
    from mmengine.config import DictAction

    from dcl_core.registry import LOSS_OPTION_HELP

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--work-dir", required=True, type=Path)
    parser.add_argument("--train-data", required=True, metavar="JSON:IMAGES")
    parser.add_argument("--val-data", metavar="JSON:IMAGES")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in --work-dir")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, metavar="KEY=VALUE",
                        help="override config keys, e.g. "
                             "train_cfg.max_iters=400")
    parser.add_argument("--loss", nargs="+", metavar="NAME|KEY=VALUE", help=LOSS_OPTION_HELP)
    parser.add_argument("--seed", type=int, metavar="N",
                        help="the run's seed (randomness.seed); default: the config's")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    return parser.parse_args(argv)


def build_config(args):
    """The resolved config for ``args``; raises ``CliError`` on a user error."""
    from dcl_mmdet.checkpoint import check_weights_fit, resume_checkpoint
    from dcl_mmdet.runner_setup import (CliError, check_contrast_cfg, check_pretrained,
                                        load_config, schedule_warnings, set_dataset,
                                        set_num_classes)

    if args.work_dir.exists() and not args.work_dir.is_dir():
        raise CliError(f"--work-dir {args.work_dir} is a file, not a folder")
    cfg = load_config(args.config, args.cfg_options, args.loss, args.seed)
    check_contrast_cfg(cfg.model)
    classes, _ = set_dataset(cfg.train_dataloader, args.train_data, "--train-data")
    set_num_classes(cfg, len(classes))
    if args.val_data:
        val_classes, ids = set_dataset(cfg.test_dataloader, args.val_data, "--val-data")
        if val_classes != classes:
            raise CliError("--val-data: its categories differ from --train-data's")
        cfg.test_evaluator = dict(type="CocoResultsWriter", outfile="predictions_val.json",
                                  category_ids=ids)
    check_pretrained(cfg.model)
    check_load_from(cfg)
    # Then whether the files fit the model (read weights-only, as above).
    for line in check_weights_fit(cfg.model, cfg.get("load_from"), cfg.get("load_from_dropped", ())):
        print(f"note: {line}", file=sys.stderr)
    for line in schedule_warnings(cfg):
        print(f"warning: {line}", file=sys.stderr)
    cfg.work_dir = str(args.work_dir)
    cfg.resume = False
    if args.resume:
        # Chosen here, not by mmengine, which trusts the tag (or resumes from load_from).
        checkpoint, warning = resume_checkpoint(args.work_dir)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        if checkpoint:
            cfg.load_from, cfg.resume = checkpoint, True
    cfg.launcher = args.launcher
    return cfg


def check_load_from(cfg) -> None:
    """Refuse a local ``load_from`` that weights-only loading refuses, in one line."""
    from dcl_mmdet.checkpoint import checkpoint_error
    from dcl_mmdet.runner_setup import CliError

    path = cfg.get("load_from")
    if path and "://" not in path:
        if not Path(path).is_file():
            raise CliError(f"load_from not found: {path}")
        if error := checkpoint_error(path):
            raise CliError(f"load_from {path} refused: {error}")


def main(argv=None) -> int:
    args = parse_args(argv)
    from dcl_mmdet.checkpoint import allow_mmengine_checkpoints, train_and_publish
    from dcl_mmdet.runner_setup import CliError

    allow_mmengine_checkpoints()

    try:
        cfg = build_config(args)
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from dcl_core.sampling import InfeasibleSamplingError

    # InfeasibleSamplingError: raised while the model is built
    return train_and_publish(cfg, args.work_dir, args.resume, (InfeasibleSamplingError,))


if __name__ == "__main__":
    sys.exit(main())
