"""The dense contrastive loss on SparseInst's mask features (DCL paper Sec. 5.2)."""

from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn

from detectron2.layers import ROIAlign, cat
from detectron2.structures import Instances

from dcl_core import DenseContrastiveLoss
from dcl_core.monitor import ValidRoIWatch
from dcl_core.sampling import check_counts_fit

from ..config import contrast_loss_from_node

__all__ = ["gt_roi_inputs", "GTBoxContrast", "build_gt_box_contrast"]


def gt_roi_inputs(mask_features: torch.Tensor, instances: List[Instances], resolution: int,
                  stride: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """RoI features and ground-truth masks at every ground-truth box of the batch.

    SparseInst has no proposals, so the ground-truth boxes are the RoIs (DCL paper Sec. 5.2):
    the mask features are pooled with RoIAlign (aligned, adaptive sampling) and each instance's
    own mask is cropped and resized to its box (``gt_masks.crop_and_resize``, as Mask R-CNN's
    mask targets), both at ``resolution`` x ``resolution``.

    Args:
        mask_features: float ``[B, D, H/s, W/s]``, the mask branch's output for the padded batch.
        instances: per image, ``Instances`` with ``gt_boxes`` (XYXY, input-image pixels) and
            ``gt_masks`` (``BitMasks`` or ``PolygonMasks``), in batch order.
        resolution: side of the pooled features and masks (28, as Mask R-CNN's mask head).
        stride: s, input pixels per feature pixel (8).

    Returns:
        float ``[R, D, resolution, resolution]`` and bool ``[R, resolution, resolution]``,
        R = total ground truths, images in batch order.

    Raises:
        ValueError: the number of ``instances`` differs from the batch size.
    """
    if len(instances) != mask_features.shape[0]:
        raise ValueError(f"{len(instances)} target Instances for a batch of "
                         f"{mask_features.shape[0]} images")
    device = mask_features.device
    rois, masks = [], []
    for b, inst in enumerate(instances):
        if len(inst) == 0:
            continue
        boxes = inst.gt_boxes.tensor.to(device=device, dtype=mask_features.dtype)
        rois.append(torch.cat([boxes.new_full((len(boxes), 1), float(b)), boxes], dim=1))
        masks.append(inst.gt_masks.crop_and_resize(inst.gt_boxes.tensor, resolution).to(device))
    d = mask_features.shape[1]
    if not rois:
        return (mask_features.new_zeros((0, d, resolution, resolution)),
                torch.zeros((0, resolution, resolution), dtype=torch.bool, device=device))
    pooler = ROIAlign((resolution, resolution), 1.0 / stride, 0, aligned=True)
    return pooler(mask_features, cat(rois, dim=0)), cat(masks, dim=0).bool()


class GTBoxContrast(nn.Module):
    """``loss_contrast`` for SparseInst: :func:`gt_roi_inputs` then the dense contrastive loss.

    Args:
        loss: the ``dcl_core.DenseContrastiveLoss`` (channels = D, the mask features' channels).
        resolution: RoIAlign output side (28).
        stride: input pixels per mask-feature pixel (8).

    Forward: ``(mask_features [B, D, H/s, W/s], instances)`` -> 0-dim lambda x L_contrast
    (exactly 0 with a graph when no RoI is valid). ``last_num_rois`` / ``last_num_valid`` of
    ``loss`` say how many RoIs took part; ``valid_roi_watch`` (fed where they are logged) warns
    when none has been valid for many iterations.

    Raises:
        dcl_core.sampling.InfeasibleSamplingError: the loss's counts leave no valid RoI at
            ``resolution`` x ``resolution``.
    """

    def __init__(self, loss: DenseContrastiveLoss, resolution: int = 28, stride: float = 8.0):
        super().__init__()
        self.loss = loss
        self.resolution = int(resolution)
        self.stride = float(stride)
        check_counts_fit(loss.num_anchors, loss.num_positives, loss.num_negatives,
                         self.resolution, self.resolution)
        self.valid_roi_watch = ValidRoIWatch()

    def forward(self, mask_features: torch.Tensor, instances: List[Instances]) -> torch.Tensor:
        features, masks = gt_roi_inputs(mask_features, instances, self.resolution, self.stride)
        return self.loss(features, masks)


def build_gt_box_contrast(cfg, channels: int, stride: float):
    """:class:`GTBoxContrast` from ``MODEL.SPARSE_INST.CONTRAST_LOSS``; None when lambda is 0.

    ``NUM_ANCHORS``/``NUM_POSITIVES``/``NUM_NEGATIVES`` of 0 mean K (``NUM_SAMPLES``).
    """
    node = cfg.MODEL.SPARSE_INST.CONTRAST_LOSS
    loss = contrast_loss_from_node(node, channels)
    if loss is None:
        return None
    return GTBoxContrast(loss, node.POOLER_RESOLUTION, stride)
