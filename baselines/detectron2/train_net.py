#!/usr/bin/env python
"""Train or evaluate detectron2 Mask R-CNN with the dense contrastive loss.

Like detectron2's ``tools/train_net.py`` (same flags, ``KEY VALUE`` overrides), plus:

- ``--dataset NAME=ANNOTATIONS.json:IMAGE_ROOT`` registers COCO-format data given as paths
  (checked before training starts); detectron2's built-in names (``coco_2017_train``,
  ``cityscapes_fine_instance_seg_train``, ...) work as usual under ``$DETECTRON2_DATASETS``.
- ``--predictions-out FILE`` with ``--eval-only`` writes COCO-format results for the first
  ``DATASETS.TEST`` entry; scoring them is the evaluation step's job (``analysis.coco_eval``).
- ``--resume`` continues from ``OUTPUT_DIR/last_checkpoint`` after an interruption.

The authors' commands work unchanged, e.g.::

    python train_net.py --num-gpus 4 --config-file configs/cityscapes/mask_rcnn_R_50_FPN.yaml \\
        MODEL.ROI_HEADS.NAME ContrastRoIHeads MODEL.ROI_MASK_HEAD.NAME ContrastConvUpsampleHead
"""

from __future__ import annotations

from pathlib import Path

import torch

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.engine import DefaultTrainer, default_argument_parser, default_setup, launch
from detectron2.evaluation import inference_on_dataset
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping
from detectron2.utils.events import CommonMetricPrinter, JSONWriter, TensorboardXWriter

from dcl_detectron2 import add_project_config
from dcl_detectron2.checkpoint import enforce_strict_loading
from dcl_detectron2.cost import TrainingCostHook
from dcl_detectron2.data import parse_dataset_arg, register_coco_dataset
from dcl_detectron2.predictions import COCOResultsWriter


def predictions_file(folder, dataset_name: str) -> Path:
    """Where a dataset's COCO-format predictions go unless ``--predictions-out`` says."""
    return Path(folder) / f"predictions_{dataset_name}.json"


class Trainer(DefaultTrainer):
    """detectron2's trainer; evaluation only writes predictions (scored outside)."""

    def build_writers(self):
        # `metrics.json` of a run folder is its evaluation (the workflow's convention); the
        # per-iteration training events (losses, time, lr) go to `train_metrics.json`.
        return [
            CommonMetricPrinter(self.max_iter),
            JSONWriter(str(Path(self.cfg.OUTPUT_DIR) / "train_metrics.json")),
            TensorboardXWriter(self.cfg.OUTPUT_DIR),
        ]

    def build_hooks(self):
        hooks = super().build_hooks()
        # Before the writers (the last hooks), so the cost file exists once training ends.
        hooks.insert(-1, TrainingCostHook(self.cfg.OUTPUT_DIR, self.cfg.MODEL.DEVICE,
                                          self.cfg.SOLVER.IMS_PER_BATCH))
        return hooks

    @classmethod
    def build_optimizer(cls, cfg, model):
        """detectron2's SGD, or with ``SOLVER.OPTIMIZER: ADAMW`` the Swin practice for Mask
        R-CNN (Swin paper Sec. 4.2): AdamW, ``BASE_LR``, ``WEIGHT_DECAY``, no decay on norm
        layers (``WEIGHT_DECAY_NORM``) and relative position bias tables; biases decay like
        weights (``WEIGHT_DECAY_BIAS`` and ``BIAS_LR_FACTOR`` are SGD-only)."""
        name = cfg.SOLVER.OPTIMIZER.upper()
        if name == "SGD":
            return super().build_optimizer(cfg, model)
        if name != "ADAMW":
            raise SystemExit(f"error: SOLVER.OPTIMIZER must be SGD or ADAMW, "
                             f"got {cfg.SOLVER.OPTIMIZER!r}")
        params = get_default_optimizer_params(
            model, base_lr=cfg.SOLVER.BASE_LR, weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
            overrides={"relative_position_bias_table": {"weight_decay": 0.0}})
        return maybe_add_gradient_clipping(cfg, torch.optim.AdamW)(
            params, lr=cfg.SOLVER.BASE_LR, weight_decay=cfg.SOLVER.WEIGHT_DECAY)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return COCOResultsWriter(dataset_name, predictions_file(output_folder or cfg.OUTPUT_DIR,
                                                                dataset_name))


def setup(args):
    from dcl_data import DatasetError

    cfg = get_cfg()
    add_project_config(cfg)
    # Fail before any training with one line naming the key or file, not a traceback.
    # (yacs reports an unknown key as KeyError from a file, AssertionError from the command
    # line, and a wrong type as ValueError.)
    errors = (KeyError, AssertionError, ValueError, FileNotFoundError)
    try:
        cfg.merge_from_file(args.config_file)
    except errors as e:
        raise SystemExit(f"error: {args.config_file}: {e}") from None
    try:
        cfg.merge_from_list(args.opts)
    except errors as e:
        raise SystemExit(f"error: command-line override: {e}") from None
    num_classes = None
    for spec in args.dataset:
        try:
            name, json_file, image_root = parse_dataset_arg(spec)
            n = register_coco_dataset(name, json_file, image_root)
        except (ValueError, DatasetError) as e:
            raise SystemExit(f"error: {e}") from None
        if name in cfg.DATASETS.TRAIN:
            num_classes = n
    if num_classes is not None:
        cfg.MODEL.ROI_HEADS.NUM_CLASSES = num_classes
    if not torch.cuda.is_available():
        cfg.MODEL.DEVICE = "cpu"
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        checkpointer = DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR)
        enforce_strict_loading(checkpointer, cfg).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        if not cfg.DATASETS.TEST:
            raise SystemExit("error: --eval-only needs DATASETS.TEST")
        name = cfg.DATASETS.TEST[0]
        out = Path(args.predictions_out or predictions_file(cfg.OUTPUT_DIR, name))
        loader = Trainer.build_test_loader(cfg, name)
        return inference_on_dataset(model, loader, COCOResultsWriter(name, out))
    trainer = Trainer(cfg)
    enforce_strict_loading(trainer.checkpointer, cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def parse_args(argv=None):
    parser = default_argument_parser()
    parser.add_argument("--dataset", action="append", default=[], metavar="NAME=JSON:IMAGE_ROOT",
                        help="register a COCO-format dataset (repeatable)")
    parser.add_argument("--predictions-out", default=None,
                        help="with --eval-only: where to write the COCO-format results JSON")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))
