"""Dense contrastive loss (Chen et al., BMVC 2022) for detectron2.

Importing this package registers ``ContrastRoIHeads`` and ``ContrastConvUpsampleHead`` (the
authors' names, so their configs and commands work) in detectron2's registries. Call
:func:`add_dcl_config` on a config before merging a file that uses the
``MODEL.ROI_MASK_HEAD.CONTRAST_LOSS`` keys.
"""

from .config import add_dcl_config
from .mask_head import ContrastConvUpsampleHead
from .roi_heads import ContrastRoIHeads
from .sparseinst import SparseInst, add_sparseinst_config
from .swin import add_swin_config

__all__ = ["add_dcl_config", "ContrastConvUpsampleHead", "ContrastRoIHeads", "add_swin_config",
           "SparseInst", "add_sparseinst_config"]
