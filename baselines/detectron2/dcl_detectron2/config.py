"""Config keys of the dense contrastive loss in detectron2, under the authors' names."""

from detectron2.config import CfgNode as CN


def add_dcl_config(cfg: CN) -> CN:
    """Add ``MODEL.ROI_MASK_HEAD.CONTRAST_LOSS`` with the authors' defaults and return ``cfg``.

    Keys (paper symbols in brackets; defaults from the authors' code, official-code.md):

    - ``LOSS_WEIGHT`` (lambda, Eq. 6): 1.2, the paper's Cityscapes/ImageNet setting. 0 builds no
      loss module at all, so lambda = 0 is exactly the baseline (Table 1's first row).
    - ``NUM_SAMPLES`` (K, Sec. 4.2): 32 anchors, positives and negatives per RoI.
    - ``TEMPERATURE`` (tau, Eq. 3): 0.07.
    - ``WITH_PROJ`` (learnable similarity, Eq. 5): True.
    - ``MAX_INSTANCES``: at most this many foreground RoIs per batch take part (100).
    - ``ROI_SELECTION``: "first" (the authors: the first MAX_INSTANCES RoIs) or "random".
    - ``NUM_ANCHORS``, ``NUM_POSITIVES``, ``NUM_NEGATIVES`` (|A|, |P|, |N|, the paper's
      supplementary study): 0 (default) means K; a positive count overrides K for that set.

    The keys only take effect with ``MODEL.ROI_MASK_HEAD.NAME: ContrastConvUpsampleHead``.
    """
    cfg.MODEL.ROI_MASK_HEAD.CONTRAST_LOSS = CN()
    node = cfg.MODEL.ROI_MASK_HEAD.CONTRAST_LOSS
    node.LOSS_WEIGHT = 1.2
    node.NUM_SAMPLES = 32
    node.TEMPERATURE = 0.07
    node.WITH_PROJ = True
    node.MAX_INSTANCES = 100
    node.ROI_SELECTION = "first"
    node.NUM_ANCHORS = 0
    node.NUM_POSITIVES = 0
    node.NUM_NEGATIVES = 0
    return cfg
