"""ContrastMask (Wang et al., CVPR 2022) for mmdetection 3: partially-supervised Mask R-CNN with
CAMs and a pixel-contrastive head, faithful to the official code (huiserwang/ContrastMask,
mmdet 2.14; shared/reference/contrastmask-cac.md part A).

Registered on import (``custom_imports=dict(imports=['dcl_mmdet'])`` imports this too):

- ``CocoPartialDataset`` (DATASETS), ``LoadPartialAnnotations``, ``PackPartialInputs``
  (TRANSFORMS): instances carry ``is_novel`` from the VOC / non-VOC split
  (:mod:`dcl_data.voc_split`);
- ``CamConvBBoxHead``, ``ContrastMaskHead``, ``ContrastMaskRoIHead`` (MODELS): the box head
  with CAMs, the mask head fed by the contrastive branch and the CAM, the RoI head wiring them
  (base ground-truth-box RoIs only for the mask BCE);
- ``ContrastRampHook`` (HOOKS): the loss weight's epoch ramp, resume-safe.

The loss and its contrastive head (encoder, projector, queries and keys) are dcl_core's
(:mod:`dcl_core.contrastmask`), imported when a model with the loss is built.
"""

from .bbox_head import CamConvBBoxHead
from .data import CocoPartialDataset, LoadPartialAnnotations, PackPartialInputs
from .hooks import ContrastRampHook
from .mask_head import ContrastMaskHead
from .roi_head import ContrastMaskRoIHead

__all__ = ["CamConvBBoxHead", "CocoPartialDataset", "ContrastMaskHead", "ContrastMaskRoIHead",
           "ContrastRampHook", "LoadPartialAnnotations", "PackPartialInputs"]
