"""Mask R-CNN mask head with the dense contrastive loss (paper Sec. 4, Figure 3)."""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import nn

from detectron2.config import configurable
from detectron2.layers import cat
from detectron2.modeling.roi_heads.mask_head import (
    ROI_MASK_HEAD_REGISTRY,
    MaskRCNNConvUpsampleHead,
    mask_rcnn_inference,
    mask_rcnn_loss,
)
from detectron2.structures import Instances

from dcl_core.sampling import check_counts_fit

from .config import contrast_loss_from_node


def mask_features(head: MaskRCNNConvUpsampleHead, x: torch.Tensor) -> torch.Tensor:
    """RoI features ``[R, C_in, 14, 14]`` -> the input of ``head.predictor``,
    ``[R, conv_dim, 28, 28]`` (after deconv and ReLU), for any conv-upsample head.

    The head is an ``nn.Sequential`` ending in ``predictor``; subclasses may register more
    modules after it (as ``ContrastConvUpsampleHead``'s loss), so the loop stops there.

    Raises:
        RuntimeError: the head has no predictor layer.
    """
    for layer in head:
        if layer is head.predictor:
            return x
        x = layer(x)
    raise RuntimeError(f"mask head {type(head).__name__} has no predictor layer")


def gt_masks_at(instances: List[Instances], side: int, device: torch.device) -> torch.Tensor:
    """Matched gt masks cropped and resized to each foreground proposal: bool ``[R, side, side]``.

    The same targets as detectron2's ``mask_rcnn_loss`` (the authors' code does the same).
    """
    masks = [
        x.gt_masks.crop_and_resize(x.proposal_boxes.tensor, side).to(device)
        for x in instances
        if len(x) > 0
    ]
    if not masks:
        return torch.zeros((0, side, side), dtype=torch.bool, device=device)
    return cat(masks, dim=0).bool()


@ROI_MASK_HEAD_REGISTRY.register()
class ContrastConvUpsampleHead(MaskRCNNConvUpsampleHead):
    """``MaskRCNNConvUpsampleHead`` plus ``loss_contrast`` on the predictor's input.

    The contrastive loss sees the tensor that enters the final 1x1 mask predictor (after deconv
    and ReLU): float ``[R, conv_dim, 28, 28]`` for the standard head, as in the authors' code.
    Inference is unchanged and the projection is never run outside training (no test-time cost).
    """

    @configurable
    def __init__(self, input_shape, *, contrast_loss: Optional[nn.Module] = None, **kwargs):
        super().__init__(input_shape, **kwargs)
        # Registered after `predictor`, so it is the last child; `mask_features` stops before it.
        self.contrast_loss = contrast_loss

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        ret["contrast_loss"] = loss = contrast_loss_from_node(
            cfg.MODEL.ROI_MASK_HEAD.CONTRAST_LOSS, ret["conv_dims"][-1])
        if loss is not None:  # the deconv doubles the pooled side: 14 -> 28
            check_counts_fit(loss.num_anchors, loss.num_positives, loss.num_negatives,
                             2 * input_shape.height, 2 * input_shape.width)
        return ret

    def mask_features(self, x: torch.Tensor) -> torch.Tensor:
        """RoI features ``[R, C_in, 14, 14]`` -> the predictor's input ``[R, conv_dim, 28, 28]``."""
        return mask_features(self, x)

    def layers(self, x: torch.Tensor) -> torch.Tensor:
        return self.predictor(self.mask_features(x))

    def forward(self, x, instances: List[Instances]):
        features = self.mask_features(x)
        logits = self.predictor(features)
        if not self.training:
            mask_rcnn_inference(logits, instances)
            return instances
        losses = {"loss_mask": mask_rcnn_loss(logits, instances, self.vis_period) * self.loss_weight}
        if self.contrast_loss is not None:
            gt_masks = gt_masks_at(instances, features.shape[-1], features.device)
            losses["loss_contrast"] = self.contrast_loss(features, gt_masks)
        return losses
