"""RefineMask mask head with the dense contrastive loss, for mmdetection 3.

RefineMask (Zhang et al., "RefineMask: Towards High-Quality Instance Segmentation with
Fine-Grained Features", CVPR 2021), written for this project from the paper, with the layer
layout and defaults of the authors' configs where the paper leaves them open:

- instance branch: 14 x 14 RoI features -> ``num_convs_instance`` (2) 3x3 convs;
- semantic branch (:class:`~dcl_mmdet.semantic_head.SemanticHead`): P2 -> 4 convs ->
  foreground logits, trained with BCE (``loss_semantic``, weight 1.0);
- multi-stage refinement: one semantic fusion stage (:class:`~dcl_mmdet.sfm.SemanticFusionStage`)
  per size 14 -> 28 -> 56 (channels halve at each stage: 256 -> 128 -> 64 -> 32), then a
  1x1 predictor at 112; every stage predicts a mask, supervised at its size (14, 28, 56, 112)
  with weights (0.25, 0.5, 0.75, 1.0) (``loss_mask`` is their weighted sum);
- boundary-aware refinement (:mod:`dcl_mmdet.bar`): after stage 1 (28 x 28) the loss is
  restricted to boundary regions (width 2), and at inference each finer stage only replaces
  the coarser mask on its boundary (width 1).

Dense contrastive loss (Chen et al., BMVC 2022): on the output of the first semantic fusion
stage, ``[R, C/2, 28, 28]`` (128 channels in the paper's model, the authors' choice), against
the matched ground-truth masks cropped and resized to the positive proposals at 28 x 28
(mmdet's ``mask_target``). Returned as ``loss_contrast``; ``loss_contrast=None`` or
``loss_weight=0`` builds nothing and trains exactly the baseline.

Faithful to the authors' code (zhanggang001/RefineMask): with the same weights the stage
logits, the losses and the BAR-merged masks equal theirs (golden test in
``tests/test_mmdet_refinemask.py``); their checkpoints load after
``tools/convert_official_refinemask.py`` (different parameter names). By default the boundary
region is the code's rule (``boundary_rule="fraction"``); the paper's distance definition is
``boundary_rule="distance"`` (see :mod:`dcl_mmdet.bar`). Differences: no test-time chunking of
RoIs; norm layers are optional (``norm_cfg``, used at the embedded scale where everything
trains from scratch). Any number of images per GPU works, as in theirs (the official Cityscapes
config trains 2 per GPU, the DCL authors' 1: see the Cityscapes configs).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.config import ConfigDict
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask
from mmdet.models.utils import empty_instances
from mmdet.registry import MODELS
from mmdet.structures.mask import mask_target

from dcl_core.monitor import ValidRoIWatch
from dcl_core.sampling import check_counts_fit

from .bar import BOUNDARY_RULES, bar_stage_losses, refine_stages
from .contrast import build_contrast_loss
from .semantic_head import SemanticHead, semantic_targets
from .sfm import SemanticFusionStage

__all__ = ["RefineMaskHead"]

# Masks pasted per chunk on a GPU (memory bound); on the CPU one by one, skipping empty area.
_GPU_PASTE_BYTES = 1024**3


@MODELS.register_module()
class RefineMaskHead(BaseModule):
    """RefineMask's mask head (semantic head, SFM stages, BAR) plus ``loss_contrast``.

    Args:
        num_classes: object classes (Cityscapes: 8).
        in_channels: channels of the 14 x 14 RoI features and of P2 (FPN width).
        instance_channels: channels of the instance convs (256); stage i works at
            ``instance_channels / 2**i``.
        num_convs_instance: 3x3 convs on the RoI features (2).
        semantic_channels, num_convs_semantic: the semantic head (256, 4).
        stage_sizes: supervision size of each stage; each twice the previous
            (14, 28, 56, 112); the first must equal the RoI extractor's output size.
        dilations: of the fusion convs (1, 3, 5).
        semantic_stride: stride of P2 (4).
        mask_use_sigmoid: fuse masks as probabilities (True in the authors' configs).
        class_agnostic_final: one mask for all classes at the last stage (authors: LVIS only).
        conv_cfg, norm_cfg: for the 3x3 convs (mmcv configs; None = plain conv + ReLU).
        stage_loss_weights: per stage (0.25, 0.5, 0.75, 1.0).
        semantic_loss_weight: (1.0).
        boundary_width: BAR width of the training loss, in the previous stage's pixels (2).
        start_stage: last stage supervised on all pixels and first stage of the BAR merge (1).
        test_boundary_width: BAR width at inference (1).
        boundary_rule: ``"fraction"`` (authors' code: > 10% of the window has the other
            label) or ``"distance"`` (paper: within the width of the contour); see
            :mod:`dcl_mmdet.bar`.
        loss_contrast: None, or the dense contrastive loss's settings (see
            :func:`dcl_mmdet.contrast.build_contrast_loss`).

    Raises:
        ValueError: inconsistent stage sizes, weights or start stage, an unknown
            ``boundary_rule``, or a bad ``loss_contrast`` (``InfeasibleSamplingError`` for
            counts no RoI at ``stage_sizes[1]`` could satisfy).
    """

    def __init__(self, num_classes: int = 80, in_channels: int = 256,
                 instance_channels: int = 256, num_convs_instance: int = 2,
                 semantic_channels: int = 256, num_convs_semantic: int = 4,
                 stage_sizes: Sequence[int] = (14, 28, 56, 112),
                 dilations: Sequence[int] = (1, 3, 5), semantic_stride: int = 4,
                 mask_use_sigmoid: bool = True, class_agnostic_final: bool = False,
                 conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                 stage_loss_weights: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
                 semantic_loss_weight: float = 1.0, boundary_width: int = 2,
                 start_stage: int = 1, test_boundary_width: int = 1,
                 boundary_rule: str = "fraction",
                 loss_contrast: Optional[dict] = None, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        sizes = [int(s) for s in stage_sizes]
        if len(sizes) < 2 or any(b != 2 * a for a, b in zip(sizes, sizes[1:])):
            raise ValueError(f"stage_sizes must double at each stage (e.g. 14, 28, 56, 112), got {sizes}")
        if len(stage_loss_weights) != len(sizes):
            raise ValueError(f"stage_loss_weights has {len(stage_loss_weights)} entries for {len(sizes)} stages")
        if not 0 <= start_stage < len(sizes):
            raise ValueError(f"start_stage must index a stage (0..{len(sizes) - 1}), got {start_stage}")
        if boundary_rule not in BOUNDARY_RULES:
            raise ValueError(f"boundary_rule must be one of {BOUNDARY_RULES}, got {boundary_rule!r}")
        if instance_channels // 2 ** (len(sizes) - 1) <= 2:
            raise ValueError(f"instance_channels={instance_channels} is too narrow for {len(sizes)} stages")
        self.num_classes = int(num_classes)
        self.stage_sizes = sizes
        self.stage_loss_weights = [float(w) for w in stage_loss_weights]
        self.semantic_loss_weight = float(semantic_loss_weight)
        self.semantic_stride = int(semantic_stride)
        self.boundary_width = int(boundary_width)
        self.start_stage = int(start_stage)
        self.test_boundary_width = int(test_boundary_width)
        self.boundary_rule = boundary_rule
        self.class_agnostic_final = bool(class_agnostic_final)

        self.instance_convs = nn.ModuleList(
            ConvModule(in_channels if i == 0 else instance_channels, instance_channels, 3,
                       padding=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg)
            for i in range(num_convs_instance)
        )
        self.semantic_head = SemanticHead(in_channels, semantic_channels, num_convs_semantic,
                                          conv_cfg, norm_cfg)
        self.stages = nn.ModuleList()
        channels = instance_channels if num_convs_instance > 0 else in_channels
        for size in sizes[:-1]:
            self.stages.append(SemanticFusionStage(
                channels, channels // 2, self.semantic_head.channels, size, self.num_classes,
                dilations, semantic_stride, mask_use_sigmoid, conv_cfg, norm_cfg))
            channels //= 2
        self.final_logits = nn.Conv2d(channels, 1 if self.class_agnostic_final else self.num_classes, 1)
        # Registered last: the loss serves training only, and is absent for the baseline.
        self.contrast_loss = build_contrast_loss(loss_contrast, self.stages[0].expand.out_channels + 2)
        if self.contrast_loss is not None:  # it sees the first fusion stage's output
            loss = self.contrast_loss
            check_counts_fit(loss.num_anchors, loss.num_positives, loss.num_negatives,
                             sizes[1], sizes[1])
            self.valid_roi_watch = ValidRoIWatch()

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.kaiming_normal_(self.final_logits.weight, mode="fan_out", nonlinearity="relu")
        nn.init.constant_(self.final_logits.bias, 0)

    # ------------------------------------------------------------------ forward
    def forward(self, roi_feats: Tensor, p2: Tensor, rois: Tensor, labels: Tensor) -> Dict:
        """Run the head.

        Args:
            roi_feats: float ``[R, in_channels, s0, s0]`` (s0 = ``stage_sizes[0]``).
            p2: float ``[B, in_channels, H/4, W/4]``, the finest FPN level.
            rois: float ``[R, 5]`` (batch index, x1, y1, x2, y2), input-image pixels.
            labels: int64 ``[R]``, 0-based class per RoI (ground truth in training,
                predicted at inference).

        Returns:
            dict with ``stage_logits`` (list of float ``[R, 1, s_i, s_i]``),
            ``semantic_logits`` (float ``[B, 1, H/4, W/4]``) and ``contrast_features`` (float
            ``[R, C/2, s1, s1]``, the first fusion stage's output).
        """
        if roi_feats.shape[-2:] != (self.stage_sizes[0],) * 2:
            raise ValueError(f"RoI features are {tuple(roi_feats.shape[-2:])} but the first stage "
                             f"size is {self.stage_sizes[0]}: set the mask RoI extractor's output_size")
        x = roi_feats
        for conv in self.instance_convs:
            x = conv(x)
        semantic_feats, semantic_logits = self.semantic_head(p2)
        stage_logits: List[Tensor] = []
        contrast_features = None
        for stage in self.stages:
            logits, x = stage(x, semantic_feats, semantic_logits, rois, labels)
            stage_logits.append(logits)
            if contrast_features is None:
                contrast_features = x
        logits = self.final_logits(x)
        if not self.class_agnostic_final and self.num_classes > 1:
            logits = logits[torch.arange(len(labels), device=logits.device), labels][:, None]
        stage_logits.append(logits)
        return dict(stage_logits=stage_logits, semantic_logits=semantic_logits,
                    contrast_features=contrast_features)

    # ------------------------------------------------------------------ training
    def get_targets(self, sampling_results: List, batch_gt_instances: List) -> List[Tensor]:
        """Per stage float ``[R, s_i, s_i]`` in {0, 1}: matched gt masks cropped to the positive
        proposals and resized to the stage size (mmdet's ``mask_target``)."""
        proposals = [res.pos_priors for res in sampling_results]
        gt_inds = [res.pos_assigned_gt_inds for res in sampling_results]
        gt_masks = [gt.masks for gt in batch_gt_instances]
        return [mask_target(proposals, gt_inds, gt_masks, ConfigDict(mask_size=size))
                for size in self.stage_sizes]

    def loss_and_target(self, mask_results: Dict, sampling_results: List,
                        batch_gt_instances: List, rcnn_train_cfg=None) -> Dict:
        """Losses of one batch.

        Args:
            mask_results: the output of :meth:`forward` on the positive proposals.
            sampling_results: mmdet ``SamplingResult`` per image.
            batch_gt_instances: per image ``InstanceData`` with ``masks`` (BitmapMasks or
                PolygonMasks at the network input scale).
            rcnn_train_cfg: unused (targets sizes come from ``stage_sizes``).

        Returns:
            ``dict(loss_mask=dict(loss_mask, loss_semantic[, loss_contrast, contrast_rois,
            contrast_valid_rois]), mask_targets=list per stage)``; every loss a 0-dim tensor.
        """
        stage_logits = mask_results["stage_logits"]
        targets = self.get_targets(sampling_results, batch_gt_instances)
        if stage_logits[0].shape[0] == 0:
            # No positive RoI: a zero that keeps every stage in the graph.
            loss_mask = sum(logits.sum() for logits in stage_logits) * 0.0
        else:
            per_stage = bar_stage_losses(stage_logits, targets, self.boundary_width,
                                         self.start_stage, self.boundary_rule)
            loss_mask = sum(w * loss for w, loss in zip(self.stage_loss_weights, per_stage))
        semantic_logits = mask_results["semantic_logits"]
        semantic_gt = semantic_targets([gt.masks for gt in batch_gt_instances],
                                       tuple(semantic_logits.shape[-2:]), self.semantic_stride,
                                       semantic_logits.device)
        loss_semantic = self.semantic_loss_weight * F.binary_cross_entropy_with_logits(
            semantic_logits[:, 0], semantic_gt)
        losses = dict(loss_mask=loss_mask, loss_semantic=loss_semantic)
        if self.contrast_loss is not None:
            features = mask_results["contrast_features"]
            gt = targets[self.stage_sizes.index(features.shape[-1])] >= 0.5
            losses["loss_contrast"] = self.contrast_loss(features, gt)
            # Logged, not summed (mmdet adds only keys containing "loss").
            losses["contrast_rois"] = features.new_tensor(float(self.contrast_loss.last_num_rois))
            losses["contrast_valid_rois"] = self.contrast_loss.last_num_valid.float()
            self.valid_roi_watch.update(self.contrast_loss.last_num_rois,
                                        self.contrast_loss.last_num_valid)
        return dict(loss_mask=losses, mask_targets=targets)

    # ------------------------------------------------------------------ inference
    def refine(self, stage_logits: Sequence[Tensor]) -> Tensor:
        """BAR at inference: float ``[R, 1, s_last, s_last]`` logits of the final masks."""
        return refine_stages(stage_logits, self.start_stage, self.test_boundary_width,
                             self.boundary_rule)

    def predict_by_feat(self, mask_logits: Tuple[Tensor, ...], results_list: List[InstanceData],
                        batch_img_metas: List[dict], rcnn_test_cfg, rescale: bool = False
                        ) -> List[InstanceData]:
        """Paste each image's final mask logits ``[n, 1, S, S]`` into the image.

        Sets ``results.masks`` (bool ``[n, H, W]``, ``sigmoid >= mask_thr_binary``); with
        ``rescale`` the boxes are divided by the image's ``scale_factor`` in place and the
        masks have the original image size, as mmdet's ``FCNMaskHead`` does.
        """
        threshold = rcnn_test_cfg.mask_thr_binary
        for i, (logits, results, meta) in enumerate(zip(mask_logits, results_list, batch_img_metas)):
            if results.bboxes.shape[0] == 0:
                results_list[i] = empty_instances([meta], results.bboxes.device, task_type="mask",
                                                  instance_results=[results],
                                                  mask_thr_binary=threshold)[0]
                continue
            scale = results.bboxes.new_tensor(meta["scale_factor"]).repeat(1, 2)
            img_h, img_w = meta["ori_shape"][:2]
            if rescale:
                results.bboxes = results.bboxes / scale
            else:
                img_h = int(np.round(img_h * float(scale[0, 1])))
                img_w = int(np.round(img_w * float(scale[0, 0])))
            results.masks = _paste(logits.sigmoid(), results.bboxes, img_h, img_w, threshold)
        return results_list


def _paste(probs: Tensor, boxes: Tensor, img_h: int, img_w: int, threshold: float) -> Tensor:
    """bool ``[n, img_h, img_w]`` masks from ``[n, 1, S, S]`` probabilities and boxes ``[n, 4]``."""
    n = probs.shape[0]
    on_cpu = probs.device.type == "cpu"
    chunks = n if on_cpu else max(1, int(np.ceil(n * img_h * img_w * 4 / _GPU_PASTE_BYTES)))
    out = torch.zeros((n, img_h, img_w), dtype=torch.bool, device=probs.device)
    for inds in torch.chunk(torch.arange(n, device=probs.device), min(chunks, n)):
        masks, spatial = _do_paste_mask(probs[inds], boxes[inds], img_h, img_w, skip_empty=on_cpu)
        out[(inds,) + spatial] = masks >= threshold
    return out
