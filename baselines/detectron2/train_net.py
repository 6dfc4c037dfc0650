#!/usr/bin/env python
"""Train or evaluate detectron2 Mask R-CNN with the dense contrastive loss.

Like detectron2's ``tools/train_net.py`` (same flags, ``KEY VALUE`` overrides), plus:

- ``--dataset NAME=ANNOTATIONS.json:IMAGE_ROOT`` registers COCO-format data given as paths
  (checked before training starts); detectron2's built-in names (``coco_2017_train``,
  ``cityscapes_fine_instance_seg_train``, ...) work as usual under ``$DETECTRON2_DATASETS``.
- ``--predictions-out FILE`` with ``--eval-only`` writes COCO-format results for the first
  ``DATASETS.TEST`` entry; scoring them is the evaluation step's job (``analysis.coco_eval``).
- ``--loss NAME [KEY=VALUE ...]`` sets the pixel-contrastive loss in neutral words
  (``--loss dcl loss_weight=1.2 temperature=0.07 num_samples=32``, or ``--loss none`` for the
  baseline); ``dcl_detectron2.config`` writes it into the model's own keys. It takes every word
  up to the next flag, so put it before ``--config-file``.
- ``--resume`` continues from ``OUTPUT_DIR/last_checkpoint`` after an interruption, or from the
  newest checkpoint that loads if that one is damaged (``dcl_detectron2.checkpoint``). Every
  load is strict (``MODEL.WEIGHTS_CHECK``): weights that do not fit the model are one line.

The trainer and the set-up live in ``dcl_detectron2.engine``. The authors' commands work
unchanged, e.g.::

    python train_net.py --num-gpus 4 --config-file configs/cityscapes/mask_rcnn_R_50_FPN.yaml \\
        MODEL.ROI_HEADS.NAME ContrastRoIHeads MODEL.ROI_MASK_HEAD.NAME ContrastConvUpsampleHead
"""

from __future__ import annotations

from pathlib import Path

from detectron2.engine import default_argument_parser, launch
from detectron2.evaluation import inference_on_dataset

from dcl_detectron2.coco_results import CocoResultsWriter
from dcl_detectron2.engine import (Trainer, add_run_arguments, build_checkpointer,
                                   check_not_an_input, predictions_file, setup)


def main(args):
    cfg = setup(args)
    if args.eval_only:
        if not cfg.DATASETS.TEST:
            raise SystemExit("error: --eval-only needs DATASETS.TEST")
        name = cfg.DATASETS.TEST[0]
        out = Path(args.predictions_out or predictions_file(cfg.OUTPUT_DIR, name))
        check_not_an_input(out, args, cfg)
        model = Trainer.build_model(cfg)
        build_checkpointer(model, cfg, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        loader = Trainer.build_test_loader(cfg, name)
        return inference_on_dataset(model, loader, CocoResultsWriter(name, out))
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def parse_args(argv=None):
    parser = add_run_arguments(default_argument_parser())
    parser.add_argument("--predictions-out", default=None,
                        help="with --eval-only: where to write the COCO-format results JSON")
    return parser.parse_args(argv)


if __name__ == "__main__":
    import pickle

    from dcl_core.sampling import InfeasibleSamplingError

    args = parse_args()
    try:
        launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
               dist_url=args.dist_url, args=(args,))
    # Counts no RoI can satisfy (raised while the model is built); weights that would run code.
    except (InfeasibleSamplingError, pickle.UnpicklingError) as e:
        raise SystemExit(f"error: {e}") from None
