"""Dense contrastive loss (Chen et al., BMVC 2022) for detectron2, and the paper's other
detectron2 models.

Importing this package registers, in detectron2's registries: ``ContrastRoIHeads`` and
``ContrastConvUpsampleHead`` (the authors' names, so their configs and commands work), the
Swin-T backbone ``build_swin_t_fpn_backbone`` and the ``SparseInst`` meta-architecture. Call
:func:`add_project_config` (or the single ``add_*_config``) on a config before merging a file
that uses their keys. :mod:`dcl_detectron2.config` translates dcl_core's neutral loss settings
(the CLIs' ``--loss``) into these keys; :mod:`dcl_detectron2.engine` holds the trainer and the
set-up the scripts share.
"""

from detectron2.config import CfgNode

from .checkpoint import add_weights_check_config
from .config import add_dcl_config
from .mask_head import ContrastConvUpsampleHead
from .roi_heads import ContrastRoIHeads
from .sparseinst import SparseInst, add_sparseinst_config
from .swin import add_swin_config

__all__ = ["add_dcl_config", "add_project_config", "add_sparseinst_config", "add_swin_config",
           "ContrastConvUpsampleHead", "ContrastRoIHeads", "SparseInst"]


def add_project_config(cfg: CfgNode) -> CfgNode:
    """All of the plug-in's keys: ``MODEL.ROI_MASK_HEAD.CONTRAST_LOSS`` (DCL on Mask R-CNN) and
    ``MODEL.ROI_MASK_HEAD.CONTRASTMASK_LOSS`` (ContrastMask's loss, off by default),
    ``MODEL.SWIN`` and ``SOLVER.OPTIMIZER`` (Swin-T), ``MODEL.SPARSE_INST`` (SparseInst + DCL),
    ``MODEL.WEIGHTS_CHECK`` (strict loading, dcl_detectron2.checkpoint).
    Harmless for configs that use none of them. Returns ``cfg``."""
    add_dcl_config(cfg)
    add_swin_config(cfg)
    add_sparseinst_config(cfg)
    add_weights_check_config(cfg)
    return cfg
