"""Strict loading of detectron2 checkpoints (``MODEL.WEIGHTS_CHECK``).

detectron2's ``DetectionCheckpointer`` loads with ``strict=False``: a checkpoint whose keys do
not fit the model is logged and training starts from partly random weights. Here the
incompatible keys it reports after loading are checked with :func:`dcl_data.weights.check_fit`:

- a checkpoint written by a trainer (it has ``"iteration"`` and no ``"__author__"``: a resumed
  run, a run's ``model_final.pth`` at evaluation) must fit exactly;
- initial weights (``MODEL.WEIGHTS``: an ImageNet backbone, a COCO detector) must fill every
  model key under ``MODEL.WEIGHTS_CHECK.SCOPE`` and bring no key the model lacks, except what
  ``MODEL.WEIGHTS_CHECK.DROPPED`` lists (e.g. the 80-class predictors of a COCO model on
  Cityscapes) and the DCL modules this project adds (:data:`PROJECT_NEW`); those drops are
  listed in the log.

ImageNet ResNet weights must also match the config's input convention
(:func:`check_resnet_convention`: MSRA's BGR Caffe2 file vs torchvision's RGB one). A mismatch
stops the process with one line naming the first missing and unexpected key.
"""

from __future__ import annotations

import logging

from detectron2.config import CfgNode as CN

from dcl_data.weights import CheckpointMismatch, check_fit

__all__ = ["PROJECT_NEW", "add_weights_check_config", "check_resnet_convention",
           "enforce_strict_loading"]

#: Modules of this project that no pretrained file has (the dense contrastive loss's projection).
PROJECT_NEW = ("roi_heads.mask_head.contrast_loss.",)
_HINT = "declare keys the recipe drops on purpose in MODEL.WEIGHTS_CHECK.DROPPED"


def add_weights_check_config(cfg: CN) -> CN:
    """Add ``MODEL.WEIGHTS_CHECK`` and return ``cfg``.

    - ``SCOPE`` (str): key prefix that ``MODEL.WEIGHTS`` must fill completely; ``""`` (default)
      the whole model, ``"backbone.bottom_up."`` an ImageNet backbone under an FPN.
    - ``DROPPED`` (list of str): key prefixes the recipe drops on purpose (not loaded, logged).
    """
    cfg.MODEL.WEIGHTS_CHECK = CN()
    cfg.MODEL.WEIGHTS_CHECK.SCOPE = ""
    cfg.MODEL.WEIGHTS_CHECK.DROPPED = []
    return cfg


def check_resnet_convention(checkpoint: dict, cfg, source: str) -> None:
    """Refuse ImageNet ResNet weights of the other convention than the config's.

    MSRA's Caffe2 R-50 (detectron2 reads it with ``__author__ == "Caffe2"``) was trained on BGR
    input with the stride in the 1x1 conv; torchvision's (``__author__`` starting with
    ``torchvision``, tools/convert_torchvision_resnet.py) on RGB with the stride in the 3x3
    conv. The keys fit either way, so only this tells a SparseInst config given MSRA's file.

    Raises:
        CheckpointMismatch: naming the file, the convention and the config's values.
    """
    if "resnet" not in cfg.MODEL.BACKBONE.NAME:
        return
    author = str(checkpoint.get("__author__", ""))
    fmt, stride_in_1x1 = cfg.INPUT.FORMAT, cfg.MODEL.RESNETS.STRIDE_IN_1X1
    if author == "Caffe2":
        wanted, name = ("BGR", True), "MSRA's Caffe2 ResNet"
    elif author.startswith("torchvision"):
        wanted, name = ("RGB", False), "torchvision's ResNet"
    else:
        return
    if (fmt, bool(stride_in_1x1)) != wanted:
        raise CheckpointMismatch(
            f"{source}: {name} weights need INPUT.FORMAT {wanted[0]} and "
            f"MODEL.RESNETS.STRIDE_IN_1X1 {wanted[1]}, but this config has {fmt} and "
            f"{stride_in_1x1}: declare the model's own weights in config.yaml")


def _check(incompatible, checkpoint: dict, cfg, source: str, logger) -> None:
    # A trainer's own checkpoint records its iteration; published files name an author.
    own = "iteration" in checkpoint and "__author__" not in checkpoint
    scope = "" if own else cfg.MODEL.WEIGHTS_CHECK.SCOPE
    dropped = () if own else (*cfg.MODEL.WEIGHTS_CHECK.DROPPED, *PROJECT_NEW)
    shapes = {k: (tuple(a), tuple(b)) for k, a, b in incompatible.incorrect_shapes}
    report = check_fit(incompatible.missing_keys, incompatible.unexpected_keys, shapes,
                       scope=scope, dropped=dropped, source=source,
                       hint="" if own else _HINT)
    for line in report.log_lines(source, scope):
        logger.info(line)


def enforce_strict_loading(checkpointer, cfg, logger=None):
    """Make ``checkpointer`` (a ``DetectionCheckpointer`` or subclass) check every model load.

    Wraps the instance's ``load`` (to know the file's name) and ``_load_model`` (whose
    ``_IncompatibleKeys`` result is checked), so it composes with whatever checkpointer class
    the trainer builds. Returns ``checkpointer``.

    Raises (at load time):
        SystemExit: ``"error: <file> does not fit the model: missing ..., unexpected ..."``.
    """
    logger = logger or logging.getLogger("dcl_detectron2.checkpoint")
    load, load_model = checkpointer.load, checkpointer._load_model
    current = {"path": "checkpoint"}

    def checked_load(path, *args, **kwargs):
        current["path"] = str(path)
        return load(path, *args, **kwargs)

    def checked_load_model(checkpoint):
        try:
            check_resnet_convention(checkpoint, cfg, current["path"])
            incompatible = load_model(checkpoint)
            if incompatible is not None:
                _check(incompatible, checkpoint, cfg, current["path"], logger)
        except CheckpointMismatch as err:
            raise SystemExit(f"error: {err}") from None
        return incompatible

    checkpointer.load = checked_load
    checkpointer._load_model = checked_load_model
    return checkpointer
