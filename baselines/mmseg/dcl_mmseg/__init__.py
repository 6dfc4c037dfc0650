"""CAC (confidence-aware contrastive loss, Wang et al., ACM MM 2023) for mmsegmentation 1.x.

Importing this package (configs: ``custom_imports = dict(imports=['dcl_mmseg', 'dcl_mmdet'],
allow_failed_imports=False)``; dcl_mmdet brings the checkpoint, cost and metrics hooks shared
with the mmdet runs) registers in mmseg's registries:

- ``CACLoss`` (MODELS): :class:`dcl_core.cac.CACLoss`, ``loss_name`` ``loss_cac``;
- ``PixelMeanCrossEntropyLoss`` (MODELS): the official code's (mmseg 0.28's) class-weighted CE,
  which mmseg 1.2.2's CE cannot compute with ignored pixels;
- ``CACFCNHead``, ``CACOCRHead`` (MODELS): HRNet FCN and OCRNet heads with the projection head
  and the weight branch (official ``cac_fcn_head.py``, ``cac_ocr_head.py``);
- ``CACWarmupHook`` (HOOKS): CAC's loss weight held at 0 for the first 5000 iterations, never
  re-zeroing a resumed run (official ``loss_weight_warmup_hook.py``);
- ``IoUMetricWriter`` (METRICS): mmseg's mIoU, written to ``metrics_miou.json``.
"""

from .heads import CACFCNHead, CACOCRHead
from .loss import CACLoss, PixelMeanCrossEntropyLoss
from .metrics import IoUMetricWriter, miou_from_areas
from .warmup import CACWarmupHook

__all__ = ["CACFCNHead", "CACLoss", "CACOCRHead", "CACWarmupHook", "IoUMetricWriter",
           "PixelMeanCrossEntropyLoss", "miou_from_areas"]
