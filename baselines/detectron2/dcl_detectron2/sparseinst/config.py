"""Config keys of SparseInst (Cheng et al., CVPR 2022) and of its dense contrastive loss."""

from __future__ import annotations

from detectron2.config import CfgNode as CN

from dcl_core import DCLSettings

from ..config import contrast_loss_node

__all__ = ["add_sparseinst_config"]


def add_sparseinst_config(cfg: CN) -> CN:
    """Add ``MODEL.SPARSE_INST`` and the optimizer keys SparseInst uses; return ``cfg``.

    Only adds keys, never changes an existing default, so calling it on a Mask R-CNN config
    changes nothing about that model. Defaults are SparseInst's (paper Sec. 3-4 and the
    authors' released code); the class count is detectron2's shared
    ``MODEL.ROI_HEADS.NUM_CLASSES`` (train_net.py sets it from ``--dataset``).

    ``MODEL.SPARSE_INST``:

    - ``IN_FEATURES``: backbone outputs fed to the encoder, ``["res3", "res4", "res5"]``.
    - ``ENCODER.NUM_CHANNELS`` (256), ``ENCODER.NORM`` ("" = none, as the authors; "GN" for
      training from scratch).
    - ``DECODER.NUM_MASKS`` (N, 100 instance activation maps), ``DECODER.KERNEL_DIM`` (D, 128:
      mask-kernel length = channels of the mask features), ``DECODER.SCALE_FACTOR`` (2.0: mask
      logits upsampled from 1/8 to 1/4), ``DECODER.GROUPS`` (1 = IAM; 4 = the G-IAM variant),
      ``DECODER.IAM_ACTIVATION`` ("sigmoid", normalised by the map's sum, or "softmax" over
      pixels), ``DECODER.NORM`` (""), ``DECODER.INST.{DIM, CONVS}`` (256, 4) and
      ``DECODER.MASK.{DIM, CONVS}`` (256, 4): width and depth of the instance and mask branches.
    - ``MATCHER.ALPHA`` (alpha, 0.8): cost = DICE^alpha x class-prob^(1 - alpha).
    - ``LOSS.{CLASS_WEIGHT, MASK_DICE_WEIGHT, MASK_PIXEL_WEIGHT, OBJECTNESS_WEIGHT}``
      (2.0, 2.0, 5.0, 1.0) and ``LOSS.{FOCAL_ALPHA, FOCAL_GAMMA}`` (0.25, 2.0).
    - ``CLS_THRESHOLD`` (0.005), ``MASK_THRESHOLD`` (0.45), ``MASKNESS_RESCORE`` (True: the
      authors' code multiplies the score by the mean probability inside the binary mask;
      False = the paper's sqrt(class prob x objectness) alone). At most
      ``TEST.DETECTIONS_PER_IMAGE`` instances are kept, highest scores first.
    - ``CONTRAST_LOSS`` (dense contrastive loss on the mask features, DCL paper Sec. 5.2): the
      Mask R-CNN head's keys (``dcl_detectron2.config.contrast_loss_node``, dcl_core's
      defaults; ``MAX_INSTANCES`` counts ground-truth RoIs per batch) with ``LOSS_WEIGHT``
      (lambda) 0.0, the plain SparseInst baseline (no module built), plus
      ``POOLER_RESOLUTION`` (28: side of the RoIAlign output and of the cropped ground-truth
      masks).

    ``SOLVER.OPTIMIZER`` ("SGD"; SparseInst trains with "ADAMW"), added only if no other
    plug-in did (``add_swin_config`` adds the same key); ``train_net.py``'s trainer reads it.
    """
    if "SPARSE_INST" in cfg.MODEL:
        return cfg
    node = cfg.MODEL.SPARSE_INST = CN()
    node.IN_FEATURES = ["res3", "res4", "res5"]
    node.CLS_THRESHOLD = 0.005
    node.MASK_THRESHOLD = 0.45
    node.MASKNESS_RESCORE = True

    node.ENCODER = CN()
    node.ENCODER.NUM_CHANNELS = 256
    node.ENCODER.NORM = ""

    node.DECODER = CN()
    node.DECODER.NUM_MASKS = 100
    node.DECODER.KERNEL_DIM = 128
    node.DECODER.SCALE_FACTOR = 2.0
    node.DECODER.GROUPS = 1
    node.DECODER.IAM_ACTIVATION = "sigmoid"
    node.DECODER.NORM = ""
    node.DECODER.INST = CN({"DIM": 256, "CONVS": 4})
    node.DECODER.MASK = CN({"DIM": 256, "CONVS": 4})

    node.MATCHER = CN({"ALPHA": 0.8})

    node.LOSS = CN()
    node.LOSS.CLASS_WEIGHT = 2.0
    node.LOSS.MASK_DICE_WEIGHT = 2.0
    node.LOSS.MASK_PIXEL_WEIGHT = 5.0
    node.LOSS.OBJECTNESS_WEIGHT = 1.0
    node.LOSS.FOCAL_ALPHA = 0.25
    node.LOSS.FOCAL_GAMMA = 2.0

    # The Mask R-CNN head's keys and dcl_core's defaults, but lambda 0: SparseInst configs are
    # the baseline unless they set a weight.
    node.CONTRAST_LOSS = contrast_loss_node(DCLSettings(loss_weight=0.0))
    node.CONTRAST_LOSS.POOLER_RESOLUTION = 28

    # Shared with the Swin plug-in: keep a value already set rather than reset it.
    if "OPTIMIZER" not in cfg.SOLVER:
        cfg.SOLVER.OPTIMIZER = "SGD"
    return cfg
