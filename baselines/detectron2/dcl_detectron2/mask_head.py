"""Mask R-CNN mask head with the dense contrastive loss (paper Sec. 4, Figure 3) and, beside or
instead of it, the other registered pixel-contrastive losses (ContrastMask's)."""

from __future__ import annotations

from typing import List, Mapping, Optional

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

from .config import contrast_loss_from_node, extra_losses_from_cfg


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


def roi_mask_logits(logits: torch.Tensor, instances: List[Instances]) -> torch.Tensor:
    """Each foreground RoI's mask logits for its ground-truth class, as ``mask_rcnn_loss``
    selects them: float ``[R, M, M]`` from ``[R, num_classes or 1, M, M]``."""
    if logits.shape[1] == 1:
        return logits[:, 0]
    classes = [x.gt_classes for x in instances if len(x) > 0]
    if not classes:
        return logits[:, 0]
    index = torch.arange(logits.shape[0], device=logits.device)
    return logits[index, cat(classes, dim=0)]


@ROI_MASK_HEAD_REGISTRY.register()
class ContrastConvUpsampleHead(MaskRCNNConvUpsampleHead):
    """``MaskRCNNConvUpsampleHead`` plus pixel-contrastive losses on the predictor's input.

    DCL (``MODEL.ROI_MASK_HEAD.CONTRAST_LOSS``) gives ``loss_contrast``; each other enabled loss
    (:data:`dcl_detectron2.config.EXTRA_LOSS_NODES`, e.g. ContrastMask's) gives
    ``loss_{name}`` (``loss_contrastmask``); any number of them at once. Every loss sees the
    tensor that enters the final 1x1 mask predictor (after deconv and ReLU): float
    ``[R, conv_dim, 28, 28]`` for the standard head, as in the DCL authors' code, with the
    foreground RoIs' gt masks at that resolution; a loss with ``uses_mask_logits = True`` also
    gets each RoI's mask logits of its gt class. Inference is unchanged and the losses' modules
    never run outside training (no test-time cost).

    DCL's module stays at ``contrast_loss`` and the others sit in the ``ModuleDict``
    ``extra_losses``, registered only when there are any: a DCL or baseline model keeps its
    children, state_dict keys and parameter initialisation (random stream) unchanged.
    """

    @configurable
    def __init__(self, input_shape, *, contrast_loss: Optional[nn.Module] = None,
                 extra_losses: Optional[Mapping[str, nn.Module]] = None, **kwargs):
        super().__init__(input_shape, **kwargs)
        # Registered after `predictor`, so they are the last children; `mask_features` stops
        # before them.
        self.contrast_loss = contrast_loss
        self.extra_losses = nn.ModuleDict(extra_losses) if extra_losses else None

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        channels = ret["conv_dims"][-1]
        ret["contrast_loss"] = loss = contrast_loss_from_node(
            cfg.MODEL.ROI_MASK_HEAD.CONTRAST_LOSS, channels)
        if loss is not None:  # the deconv doubles the pooled side: 14 -> 28
            check_counts_fit(loss.num_anchors, loss.num_positives, loss.num_negatives,
                             2 * input_shape.height, 2 * input_shape.width)
        ret["extra_losses"] = extra_losses_from_cfg(cfg.MODEL.ROI_MASK_HEAD, channels)
        return ret

    def pixel_losses(self) -> dict[str, nn.Module]:
        """The loss dict key -> module of every pixel-contrastive loss built (DCL first)."""
        losses = {} if self.contrast_loss is None else {"loss_contrast": self.contrast_loss}
        for name, module in (self.extra_losses or {}).items():
            losses[f"loss_{name}"] = module
        return losses

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
        pixel_losses = self.pixel_losses()
        if pixel_losses:
            gt_masks = gt_masks_at(instances, features.shape[-1], features.device)
            roi_logits = None
            if any(getattr(m, "uses_mask_logits", False) for m in pixel_losses.values()):
                roi_logits = roi_mask_logits(logits, instances)
            for key, module in pixel_losses.items():
                uses = getattr(module, "uses_mask_logits", False)
                losses[key] = (module(features, gt_masks, roi_logits) if uses
                               else module(features, gt_masks))
        return losses
