"""CAC decode heads for mmseg 1.x: ``CACFCNHead`` (HRNet) and ``CACOCRHead`` (OCRNet).

Official code (mmseg 0.28, ``cac_fcn_head.py`` and ``cac_ocr_head.py``; shared/reference/
contrastmask-cac.md B.2, B.7), ported to mmseg 1.x's ``loss`` / ``predict`` split:

- the segmentation path is the plain head (``forward`` and ``predict`` return its logits only;
  nothing below runs at test time);
- **proj** (:class:`dcl_core.cac.CACProjectionHead`) on the head input x (the 4 HRNet
  branches resized and concatenated, 720 channels for W48), not detached;
- **weight branch** on detached inputs: FCN, :class:`dcl_core.cac.CACWeightBranch` (1x1
  ConvModule C -> C, then 1x1 conv to K); OCR, a full ``OCRHead`` fed the detached backbone
  features and the detached soft-region logits of the auxiliary FCN head;
- losses: the main CE (``loss_ce``, with the config's class weights and OHEM sampler); the
  weight branch's CE with the SAME class weights and the SAME OHEM mask (computed once from
  the main logits) times ``weight_branch_factor`` (``loss_ce_weight``; official ``weight``,
  1.5 in every Cityscapes config); ``loss_cac`` on (proj(x), labels, main logits, weight
  logits) at feature resolution; ``acc_seg`` of the main logits.

SyncBN in the configs becomes BN on one device (mmengine converts nothing itself: the
configs' ``norm_cfg`` decides, and the embedded configs use BN).
"""

from __future__ import annotations

import copy
from typing import List, Optional

import torch
from mmcv.cnn import build_norm_layer
from torch import Tensor
from mmseg.models.decode_heads.fcn_head import FCNHead
from mmseg.models.decode_heads.ocr_head import OCRHead
from mmseg.models.losses import accuracy
from mmseg.models.utils import resize
from mmseg.registry import MODELS

from dcl_core.cac import CACProjectionHead, CACWeightBranch

__all__ = ["CACFCNHead", "CACOCRHead"]


def _norm_layer(norm_cfg: Optional[dict]):
    if norm_cfg is None:
        return None
    return lambda channels: build_norm_layer(norm_cfg, channels)[1]


class _CACLosses:
    """What both CAC heads add to an mmseg decode head (mixed in before it)."""

    def _init_cac(self, loss_cac: dict, proj_channels: int, weight_branch_factor: float) -> None:
        if not isinstance(loss_cac, dict) or loss_cac.get("type") != "CACLoss":
            raise ValueError(f"loss_cac must be a dict(type='CACLoss', ...), got {loss_cac!r}")
        self.proj = CACProjectionHead(self.in_channels, proj_channels,
                                      norm_layer=_norm_layer(self.norm_cfg))
        self.weight_branch_factor = float(weight_branch_factor)
        self.loss_cac = MODELS.build(dict(loss_cac, ignore_index=self.ignore_index))

    def _decode_losses(self, logits: Tensor, label: Tensor, seg_weight: Optional[Tensor]) -> dict:
        """The config's ``loss_decode`` terms (summed per name) of full-size logits."""
        losses = {}
        decode = self.loss_decode if isinstance(self.loss_decode, torch.nn.ModuleList) else [self.loss_decode]
        for loss_decode in decode:
            value = loss_decode(logits, label, weight=seg_weight, ignore_index=self.ignore_index)
            losses[loss_decode.loss_name] = losses.get(loss_decode.loss_name, 0) + value
        return losses

    def _cac_loss_by_feat(self, seg_logits: Tensor, weight_logits: Tensor, embeddings: Tensor,
                          batch_data_samples) -> dict:
        """Every training loss of a CAC head (module docstring), from feature-size outputs.

        Args:
            seg_logits, weight_logits: ``[B, K, h, w]`` main and weight-branch logits.
            embeddings: ``[B, D, h, w]`` proj output.
            batch_data_samples: mmseg data samples with ``gt_sem_seg`` ``[1, H, W]``.
        """
        seg_label = self._stack_batch_gt(batch_data_samples)  # [B, 1, H, W] int64
        size = seg_label.shape[2:]
        full = resize(seg_logits, size=size, mode="bilinear", align_corners=self.align_corners)
        seg_weight = self.sampler.sample(full, seg_label) if self.sampler is not None else None
        label = seg_label.squeeze(1)
        losses = self._decode_losses(full, label, seg_weight)
        weight_full = resize(weight_logits, size=size, mode="bilinear",
                             align_corners=self.align_corners)
        for name, value in self._decode_losses(weight_full, label, seg_weight).items():
            losses[f"{name}_weight"] = value * self.weight_branch_factor
        losses["acc_seg"] = accuracy(full, label, ignore_index=self.ignore_index)
        losses[self.loss_cac.loss_name] = self.loss_cac(embeddings, label, seg_logits, weight_logits)
        return losses


@MODELS.register_module()
class CACFCNHead(_CACLosses, FCNHead):
    """mmseg ``FCNHead`` + CAC (module docstring); official ``cac_fcn_hr18.py`` settings:
    ``kernel_size=1``, ``num_convs=1``, ``concat_input=False``, no dropout.

    Args:
        loss_cac: ``dict(type='CACLoss', loss_weight=..., temperature=..., ...)``
            (:class:`dcl_mmseg.CACLoss`); its ``ignore_index`` is the head's.
        proj_channels: D of the projection (official 256).
        weight_branch_factor: factor of the weight branch's CE (official 1.5).
        **kwargs: ``FCNHead``'s.

    Raises:
        ValueError: ``loss_cac`` is not a CACLoss config.
    """

    def __init__(self, loss_cac: dict, proj_channels: int = 256,
                 weight_branch_factor: float = 1.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self._init_cac(loss_cac, proj_channels, weight_branch_factor)
        self.weight_branch = CACWeightBranch(self.in_channels, self.num_classes,
                                             channels=self.in_channels, kernel_size=1,
                                             norm_layer=_norm_layer(self.norm_cfg),
                                             loss_factor=weight_branch_factor)

    def loss(self, inputs: List[Tensor], batch_data_samples, train_cfg) -> dict:
        x = self._transform_inputs(inputs)
        feats = self.convs(x)
        if self.concat_input:
            feats = self.conv_cat(torch.cat([x, feats], dim=1))
        seg_logits = self.cls_seg(feats)
        return self._cac_loss_by_feat(seg_logits, self.weight_branch(x), self.proj(x),
                                      batch_data_samples)


@MODELS.register_module()
class CACOCRHead(_CACLosses, OCRHead):
    """mmseg ``OCRHead`` + CAC (module docstring): proj on the resized concatenation before the
    bottleneck; the weight branch is a second ``OCRHead`` with the same settings (official
    channels 512, OCR channels 256) on detached inputs.

    Args:
        loss_cac, proj_channels, weight_branch_factor: as :class:`CACFCNHead`.
        **kwargs: ``OCRHead``'s (``ocr_channels``, ...).
    """

    def __init__(self, loss_cac: dict, proj_channels: int = 256,
                 weight_branch_factor: float = 1.5, **kwargs) -> None:
        super().__init__(**copy.deepcopy(kwargs))
        self._init_cac(loss_cac, proj_channels, weight_branch_factor)
        self.weight_branch = OCRHead(**copy.deepcopy(kwargs))

    def loss(self, inputs: List[Tensor], prev_output: Tensor, batch_data_samples, train_cfg) -> dict:
        x = self._transform_inputs(inputs)
        feats = self.bottleneck(x)
        context = self.spatial_gather_module(feats, prev_output)
        seg_logits = self.cls_seg(self.object_context_block(feats, context))
        weight_logits = self.weight_branch([i.detach() for i in inputs], prev_output.detach())
        return self._cac_loss_by_feat(seg_logits, weight_logits, self.proj(x), batch_data_samples)
