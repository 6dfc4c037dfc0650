"""Dense contrastive loss (Chen et al., BMVC 2022) for mmdetection 3, with RefineMask.

Importing this package (mmdet configs: ``custom_imports = dict(imports=['dcl_mmdet'],
allow_failed_imports=False)``) registers in mmdet's registries:

- ``RefineRoIHead``, ``RefineMaskHead`` (MODELS): RefineMask (Zhang et al., CVPR 2021) with an
  optional ``loss_contrast`` on the first semantic-fusion stage;
- ``DurableCheckpointHook`` (HOOKS): ``CheckpointHook`` writing atomically and durably;
- ``TrainingCostHook`` (HOOKS): ``train_cost.json`` (paper Table 9);
- ``TrainMetricsHook`` (HOOKS): ``train_metrics.json``, per-iteration losses and LR;
- ``CocoResultsWriter`` (METRICS): COCO-format results for the project's evaluation step;
- ContrastMask (Wang et al., CVPR 2022) and its partially-supervised data
  (:mod:`dcl_mmdet.contrastmask`).
"""

from .checkpoint import DurableCheckpointHook
from .coco_results import CocoResultsWriter, instances_to_coco
from .contrast import apply_loss_settings, build_contrast_loss
from .contrastmask import (CamConvBBoxHead, CocoPartialDataset, ContrastMaskHead,
                           ContrastMaskRoIHead, ContrastRampHook, LoadPartialAnnotations,
                           PackPartialInputs)
from .cost import COST_FILE, TrainingCostHook
from .metrics_hook import METRICS_FILE, TrainMetricsHook
from .refine_roi_head import RefineRoIHead
from .refinemask_head import RefineMaskHead

__all__ = [
    "COST_FILE", "CamConvBBoxHead", "CocoPartialDataset", "CocoResultsWriter",
    "ContrastMaskHead", "ContrastMaskRoIHead", "ContrastRampHook", "LoadPartialAnnotations",
    "PackPartialInputs", "DurableCheckpointHook", "METRICS_FILE", "RefineMaskHead",
    "RefineRoIHead", "TrainMetricsHook", "TrainingCostHook", "apply_loss_settings",
    "build_contrast_loss",
    "instances_to_coco",
]
