"""The project's detectron2 trainer and set-up, shared by ``train_net.py`` and the feature dump.

As detectron2's projects (``projects/PointRend/train_net.py``), the command-line scripts stay
thin: they parse flags and call :func:`setup`, :class:`Trainer` and :func:`build_checkpointer`
from here. Every model load through these is strict (:mod:`dcl_detectron2.checkpoint`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml

from detectron2.config import get_cfg
from detectron2.engine import DefaultTrainer, default_setup
from detectron2.engine.hooks import EvalHook
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping
from detectron2.utils.events import CommonMetricPrinter, JSONWriter, TensorboardXWriter

from analysis.io import input_overwritten_by
from dcl_core import parse_losses
from dcl_core.registry import LOSS_OPTION_HELP

from . import add_project_config
from .checkpoint import ResumableCheckpointer
from .coco_results import CocoResultsWriter
from .config import apply_loss_settings
from .cost import TrainingCostHook
from .data import parse_data_arg, register_coco_dataset, unregistered_datasets
from .sparseinst.official_config import merge_config_file, translate_official_opts

__all__ = ["Trainer", "add_run_arguments", "build_checkpointer", "check_not_an_input",
           "predictions_file", "setup"]


def predictions_file(folder, dataset_name: str) -> Path:
    """Where a dataset's COCO-format predictions go unless ``--predictions-out`` says."""
    return Path(folder) / f"predictions_{dataset_name}.json"


class Trainer(DefaultTrainer):
    """detectron2's trainer; evaluation only writes predictions (scored outside). Its
    checkpointer (:class:`~dcl_detectron2.checkpoint.ResumableCheckpointer`) writes durably,
    resumes past a bad file and checks every load (``MODEL.WEIGHTS``, a resumed run) strictly."""

    def build_writers(self):
        # `metrics.json` of a run folder is its evaluation (the workflow's convention); the
        # per-iteration training events (losses, time, lr) go to `train_metrics.json`.
        return [
            CommonMetricPrinter(self.max_iter),
            JSONWriter(str(Path(self.cfg.OUTPUT_DIR) / "train_metrics.json")),
            TensorboardXWriter(self.cfg.OUTPUT_DIR),
        ]

    def build_hooks(self):
        # Before the checkpoint hook takes it: atomic saves, a resume past a bad file, and
        # strict loading (DefaultTrainer.__init__ sets self.cfg before calling build_hooks).
        self.checkpointer = ResumableCheckpointer.like(self.checkpointer, cfg=self.cfg)
        hooks = super().build_hooks()
        if self.cfg.TEST.EVAL_PERIOD <= 0:
            # detectron2 still evaluates once after the last iteration when the period is 0; the
            # workflow's predict rule already runs that inference on model_final.pth, and at
            # paper scale a second pass over COCO val costs minutes of GPU time per run.
            hooks = [h for h in hooks if not isinstance(h, EvalHook)]
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
        return CocoResultsWriter(dataset_name, predictions_file(output_folder or cfg.OUTPUT_DIR,
                                                                dataset_name))


def build_checkpointer(model, cfg, save_dir: str = "") -> ResumableCheckpointer:
    """The trainer's checkpointer for ``model`` outside training (``--eval-only``, feature
    dumps): a ``.pkl`` that would run code is refused in one line, and every load is checked
    against ``MODEL.WEIGHTS_CHECK`` (:func:`dcl_detectron2.checkpoint.enforce_strict_loading`):
    a mismatch exits with one ``error:`` line."""
    return ResumableCheckpointer(model, save_dir=save_dir, cfg=cfg)


def add_run_arguments(parser: argparse.ArgumentParser, *, seed: bool = True) -> argparse.ArgumentParser:
    """The project's flags beside detectron2's: ``--dataset NAME=JSON:IMAGE_ROOT`` (repeatable),
    ``--loss NAME [KEY=VALUE ...] [+ NAME [KEY=VALUE ...]]`` (dcl_core's neutral loss option, one
    loss or several) and ``--seed N`` (written
    into ``cfg.SEED``; left out with ``seed=False`` for scripts that train nothing and give
    ``--seed`` another meaning, as the feature dump's pixel draws). Returns ``parser``."""
    parser.add_argument("--dataset", action="append", default=[], metavar="NAME=JSON:IMAGE_ROOT",
                        help="register a COCO-format dataset (repeatable)")
    parser.add_argument("--loss", nargs="+", metavar="NAME|KEY=VALUE", help=LOSS_OPTION_HELP)
    if seed:
        parser.add_argument("--seed", dest="run_seed", type=int, metavar="N",
                            help="the run's seed (cfg.SEED: initial weights, data order, flips, "
                                 "DCL's pixel sampling); default: the config's")
    return parser


def setup(args):
    """The frozen config of ``args`` (``config_file``, ``loss``, ``opts``, ``dataset``), after
    detectron2's ``default_setup`` (logging, the resolved config saved to ``OUTPUT_DIR``).

    Order: the config file, then ``--loss`` and ``--seed``, then the ``KEY VALUE`` overrides; the classes come
    from the training ``--dataset``. A user error exits with one ``error: ...`` line.
    """
    from dcl_data import DatasetError

    cfg = get_cfg()
    add_project_config(cfg)
    # Fail before any training with one line naming the key or file, not a traceback.
    # (yacs reports an unknown key as KeyError from a file, AssertionError from the command
    # line, and a wrong type as ValueError.)
    errors = (KeyError, AssertionError, ValueError, FileNotFoundError)
    # The official SparseInst files and overrides work too, translated (official_config).
    try:
        # allow_unsafe=False inside: a python/object tag is refused, not run (detectron2 falls
        # back to yaml.unsafe_load by default).
        notes = merge_config_file(cfg, args.config_file)
    except (*errors, yaml.YAMLError) as e:
        raise SystemExit(f"error: {args.config_file}: {' '.join(str(e).split())}") from None
    if getattr(args, "loss", None):
        try:
            apply_loss_settings(cfg, parse_losses(args.loss))
        except (TypeError, ValueError) as e:
            raise SystemExit(f"error: --loss: {e}") from None
    if getattr(args, "run_seed", None) is not None:
        cfg.SEED = args.run_seed
    try:
        opts, more = translate_official_opts(args.opts, cfg.MODEL.SPARSE_INST.MATCHER.ALPHA)
        cfg.merge_from_list(opts)
    except errors as e:
        raise SystemExit(f"error: command-line override: {e}") from None
    for note in notes + more:
        print(f"official SparseInst key: {note}")
    num_classes = None
    for spec in args.dataset:
        try:
            name, json_file, image_root = parse_data_arg(spec)
            n = register_coco_dataset(name, json_file, image_root)
        except (ValueError, DatasetError) as e:
            raise SystemExit(f"error: {e}") from None
        if name in cfg.DATASETS.TRAIN:
            num_classes = n
    splits = ("TEST",) if getattr(args, "eval_only", False) else ("TRAIN", "TEST")
    if unknown := unregistered_datasets(cfg, splits):
        raise SystemExit(f"error: DATASETS.{'/'.join(splits)} name unregistered datasets "
                         f"{unknown}; register each with --dataset NAME=JSON:IMAGE_ROOT")
    if num_classes is not None:
        cfg.MODEL.ROI_HEADS.NUM_CLASSES = num_classes
    if not torch.cuda.is_available():
        cfg.MODEL.DEVICE = "cpu"
    if Path(cfg.OUTPUT_DIR).is_file():
        raise SystemExit(f"error: OUTPUT_DIR {cfg.OUTPUT_DIR} is a file, not a folder")
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def check_not_an_input(out: Path, args, cfg, flag: str = "--predictions-out") -> None:
    """Refuse an output file (``flag``) that is one of the run's inputs (a ``--dataset`` JSON,
    the config, the weights): writing it would destroy that input.

    Raises:
        SystemExit: one ``error: ...`` line naming ``flag`` and the input.
    """
    inputs = [args.config_file, cfg.MODEL.WEIGHTS]
    inputs += [parse_data_arg(spec)[1] for spec in args.dataset]
    if hit := input_overwritten_by(out, inputs):
        raise SystemExit(f"error: {flag} {out} is an input of this run ({hit}); "
                         "write to another file")
