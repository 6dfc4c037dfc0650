"""Losses in mmseg's registry: ``CACLoss`` and the official code's class-weighted CE.

- ``CACLoss``: :class:`dcl_core.cac.CACLoss` (the loss math, official defaults and quirks as
  named options) under the name mmseg configs use, ``loss_name`` ``loss_cac`` (the official
  name; the heads route it apart from the CE losses).
- ``PixelMeanCrossEntropyLoss``: mmseg 0.28's softmax CE, which the CAC code and its baselines
  train with: per-pixel CE with the class weights, times the OHEM mask, averaged over ALL pixels
  of the batch (ignored ones count as 0). mmseg 1.2.2's ``CrossEntropyLoss`` with
  ``class_weight`` instead divides by the summed class weights of the labels and, doing so,
  indexes the weights with the label 255 of ignored pixels and fails (open-mmlab/
  mmsegmentation#3734): every Cityscapes config with class weights would crash.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from mmseg.models.losses import CrossEntropyLoss

from dcl_core.cac import CACLoss as _CoreCACLoss
from mmseg.registry import MODELS

__all__ = ["CACLoss", "PixelMeanCrossEntropyLoss"]


@MODELS.register_module()
class CACLoss(_CoreCACLoss):
    """:class:`dcl_core.cac.CACLoss` (same arguments, shapes and errors) for mmseg configs.

    ``loss_weight`` is a plain attribute: :class:`dcl_mmseg.CACWarmupHook` sets it to 0 for
    the warm-up and back.
    """

    @property
    def loss_name(self) -> str:
        return "loss_cac"


@MODELS.register_module()
class PixelMeanCrossEntropyLoss(CrossEntropyLoss):
    """mmseg 0.28's softmax CE (module docstring): mmseg ``CrossEntropyLoss``'s arguments
    (``class_weight``, ``loss_weight``, ``loss_name``; softmax only, ``avg_non_ignore`` False as
    in every official config).

    ``forward(cls_score [B, K, H, W] float, label [B, H, W] int64, weight [B, H, W] or None,
    ignore_index=255)`` returns ``loss_weight * sum(w_pixel * class_weight[y] * CE) / (B*H*W)``
    (ignored pixels contribute 0 to the sum and count in the divisor), a 0-dim tensor.

    Raises:
        ValueError: ``use_sigmoid`` or ``use_mask``, or ``avg_non_ignore`` (not the official
            loss).
    """

    def __init__(self, **kwargs) -> None:
        if kwargs.get("use_sigmoid") or kwargs.get("use_mask") or kwargs.get("avg_non_ignore"):
            raise ValueError("PixelMeanCrossEntropyLoss is the softmax CE averaged over all "
                             "pixels: use_sigmoid, use_mask and avg_non_ignore must be False")
        super().__init__(**kwargs)

    def forward(self, cls_score: torch.Tensor, label: torch.Tensor,
                weight: Optional[torch.Tensor] = None, avg_factor=None,
                reduction_override=None, ignore_index: int = 255, **kwargs) -> torch.Tensor:
        if avg_factor is not None or reduction_override not in (None, "mean"):
            raise ValueError("PixelMeanCrossEntropyLoss only averages over all pixels")
        class_weight = (cls_score.new_tensor(self.class_weight)
                        if self.class_weight is not None else None)
        loss = F.cross_entropy(cls_score, label, weight=class_weight, reduction="none",
                               ignore_index=ignore_index)
        if weight is not None:
            loss = loss * weight.float()
        return self.loss_weight * loss.mean()
