#!/usr/bin/env python
"""Train an mmsegmentation 1.x model of the dcl_mmseg plug-in (HRNet FCN / OCRNet, with or
without CAC).

    python baselines/mmseg/train.py CONFIG --work-dir DIR --data DATA [--resume] \\
        [--cfg-options KEY=VALUE ...] [--seed N] [--launcher pytorch]

DATA is a dcl_data.semantic_labels folder or a Cityscapes root (dcl_mmseg.runner_setup); the
data are checked before anything is built, and such a failure is one line on stderr (exit
status 2). No evaluation while training (predict.py scores the final model). Writes to DIR:
mmengine's checkpoints and logs, ``train_cost.json`` and ``train_metrics.json`` (dcl_mmdet's
hooks) and, once training has reached its last iteration, ``model_final.pth`` (a hard link to,
or copy of, the last checkpoint). ``--resume`` continues from DIR's last checkpoint (the newest
that loads if the tagged one is damaged, with a warning; CAC's warm-up is not re-applied, see
dcl_mmseg.CACWarmupHook); without it an old ``model_final.pth`` is removed before training
starts. Checkpoints are read with torch's weights-only loading (dcl_mmdet.checkpoint).
Several GPUs: ``torchrun --nproc_per_node N baselines/mmseg/train.py ... --launcher pytorch``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

def parse_args(argv=None):
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--work-dir", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path, metavar="DIR")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in --work-dir")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, metavar="KEY=VALUE",
                        help="override config keys, e.g. train_cfg.max_iters=400")
    parser.add_argument("--seed", type=int, metavar="N",
                        help="the run's seed (randomness.seed); default: the config's")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    return parser.parse_args(argv)


def build_config(args):
    """The resolved config for ``args``; raises ``CliError`` on a user error."""
    from dcl_mmdet.checkpoint import resume_checkpoint
    from dcl_mmdet.runner_setup import check_pretrained, load_config, schedule_warnings
    from dcl_mmseg.runner_setup import CliError, set_data, set_num_classes

    if args.work_dir.exists() and not args.work_dir.is_dir():
        raise CliError(f"--work-dir {args.work_dir} is a file, not a folder")
    cfg = load_config(args.config, args.cfg_options, None, args.seed)
    classes = set_data(cfg.train_dataloader, args.data, "train")
    if classes is not None:
        set_num_classes(cfg, len(classes))
    check_pretrained(cfg.model)
    check_segmentor_pretrained(cfg.model)
    for line in schedule_warnings(cfg):
        print(f"warning: {line}", file=sys.stderr)
    # Scored once at the end by predict.py, not while training.
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.work_dir = str(args.work_dir)
    cfg.resume = False
    if args.resume:
        checkpoint, warning = resume_checkpoint(args.work_dir)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        if checkpoint:
            cfg.load_from, cfg.resume = checkpoint, True
    cfg.launcher = args.launcher
    return cfg


def check_segmentor_pretrained(model_cfg) -> None:
    """mmseg segmentors name their backbone's ImageNet file in ``pretrained`` (a local path
    from the workflow, or an ``open-mmlab://`` alias mmengine resolves): a local file must exist
    and pass weights-only loading, else one line (CliError)."""
    from dcl_mmdet.checkpoint import checkpoint_error
    from dcl_mmseg.runner_setup import CliError

    path = model_cfg.get("pretrained")
    if not isinstance(path, str) or "://" in path:
        return
    if not Path(path).is_file():
        raise CliError(f"pretrained weights not found: {path} (put the file there, or set "
                       "model.pretrained=None to train from scratch)")
    if error := checkpoint_error(path):
        raise CliError(f"pretrained weights {path} refused: {error}")


def main(argv=None) -> int:
    args = parse_args(argv)
    from dcl_mmdet.checkpoint import allow_mmengine_checkpoints, train_and_publish
    from dcl_mmseg.runner_setup import CliError

    allow_mmengine_checkpoints()
    try:
        cfg = build_config(args)
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return train_and_publish(cfg, args.work_dir, args.resume)


if __name__ == "__main__":
    sys.exit(main())
