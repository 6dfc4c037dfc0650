"""Semantic fusion module, SFM (RefineMask: Zhang et al., CVPR 2021, Sec. 3.2, Figure 3).

One refinement stage of the RefineMask mask head: at stage size ``s`` it fuses the instance
features of each RoI with the RoI's crop of the image-level semantic features, the stage's own
coarse instance mask and the RoI's crop of the semantic mask, runs parallel dilated 3x3 convs
over the fused map, then upsamples it x2 and appends the two masks again (paper: "the instance
mask and the semantic mask are concatenated again after upsampling").

Layer layout and channels follow the authors' implementation (``SFMStage`` of RefineMask's
``refine_mask_head.py``): input ``C`` channels, output ``C_out`` = ``C / 2`` channels at ``2s``
of which the last two are the instance and semantic masks, upsampled with
``align_corners=True`` (the fused features without); dilations 1, 3, 5; masks as sigmoid
probabilities (``mask_use_sigmoid``). With the same weights, the stage outputs equal the
authors' bit for bit (``tests/test_mmdet_refinemask.py``, golden test).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmcv.ops import RoIAlign
from mmengine.model import BaseModule
from torch import Tensor, nn

__all__ = ["MultiDilationFusion", "SemanticFusionStage"]


def _init_plain_convs(module: nn.Module) -> None:
    # The authors' initialisation of the 1x1 layers; ConvModules init themselves.
    for m in module.children():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(m.bias, 0)


class MultiDilationFusion(BaseModule):
    """Parallel 3x3 convs with different dilations, summed, then a 1x1 conv (no activation).

    ``[R, C, H, W]`` -> ``[R, C, H, W]``. RefineMask Sec. 3.2: dilations (1, 3, 5) enlarge the
    receptive field while keeping the fine detail of the RoI.
    """

    def __init__(self, channels: int, dilations: Sequence[int] = (1, 3, 5),
                 conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not dilations:
            raise ValueError("dilations must name at least one dilation rate")
        self.branches = nn.ModuleList(
            ConvModule(channels, channels, 3, padding=d, dilation=d, conv_cfg=conv_cfg,
                       norm_cfg=norm_cfg)
            for d in dilations
        )
        self.merge = ConvModule(channels, channels, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                act_cfg=None)

    def forward(self, x: Tensor) -> Tensor:
        return self.merge(sum(branch(x) for branch in self.branches))


class SemanticFusionStage(BaseModule):
    """One SFM stage: ``[R, C, s, s]`` instance features -> coarse logits and ``[R, C_out, 2s, 2s]``.

    Args:
        in_channels: C, channels of the incoming instance features.
        out_channels: C_out (> 2), channels of the output, the last two being the masks.
        semantic_channels: channels of the semantic head's features.
        size: s, the stage's RoI size (14, 28, 56 in RefineMask).
        num_classes: classes of the stage's instance-mask predictor (1 = class-agnostic).
        dilations: of :class:`MultiDilationFusion`.
        semantic_stride: stride of the semantic features w.r.t. the input image (4: P2).
        mask_use_sigmoid: fuse masks as probabilities (True, authors' configs) or logits.
        conv_cfg, norm_cfg: for the dilated convs (mmcv ConvModule configs).
    """

    def __init__(self, in_channels: int, out_channels: int, semantic_channels: int, size: int,
                 num_classes: int, dilations: Sequence[int] = (1, 3, 5),
                 semantic_stride: int = 4, mask_use_sigmoid: bool = True,
                 conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if out_channels <= 2:
            raise ValueError(f"out_channels must be > 2 (two of them carry the masks), got {out_channels}")
        self.size = int(size)
        self.num_classes = int(num_classes)
        self.mask_use_sigmoid = mask_use_sigmoid
        # aligned=True: pixel-centre alignment, as mmdet's RoI extractors.
        self.roi_align = RoIAlign(self.size, spatial_scale=1.0 / semantic_stride, sampling_ratio=0,
                                  aligned=True)
        self.semantic_in = nn.Conv2d(semantic_channels, in_channels, 1)
        self.semantic_out = nn.Conv2d(in_channels, in_channels, 1)
        self.instance_logits = nn.Conv2d(in_channels, self.num_classes, 1)
        self.reduce = nn.Conv2d(2 * in_channels + 2, in_channels, 1)
        self.fusion = MultiDilationFusion(in_channels, dilations, conv_cfg, norm_cfg)
        self.expand = nn.Conv2d(in_channels, out_channels - 2, 1)

    def init_weights(self) -> None:
        super().init_weights()
        _init_plain_convs(self)

    def _as_mask(self, logits: Tensor) -> Tensor:
        return logits.sigmoid() if self.mask_use_sigmoid else logits

    def forward(self, instance_feats: Tensor, semantic_feats: Tensor, semantic_logits: Tensor,
                rois: Tensor, labels: Tensor) -> Tuple[Tensor, Tensor]:
        """Args:
            instance_feats: float ``[R, C, s, s]``.
            semantic_feats: float ``[B, C_sem, H/stride, W/stride]`` (whole images).
            semantic_logits: float ``[B, 1, H/stride, W/stride]``.
            rois: float ``[R, 5]`` (batch index, x1, y1, x2, y2) in input-image pixels.
            labels: int64 ``[R]`` class of each RoI (0-based; ignored when class-agnostic).

        Returns:
            (logits ``[R, 1, s, s]`` of the stage's instance mask for the RoI's class,
            fused features ``[R, C_out, 2s, 2s]``).
        """
        s = instance_feats.shape[-1]
        semantic = F.relu(self.semantic_in(semantic_feats))
        roi_semantic = F.relu(self.semantic_out(self.roi_align(semantic, rois)))
        logits = self.instance_logits(instance_feats)
        if self.num_classes > 1:
            logits = logits[torch.arange(len(labels), device=logits.device), labels][:, None]
        instance_mask = self._as_mask(logits)
        semantic_mask = self.roi_align(self._as_mask(semantic_logits), rois)
        fused = torch.cat([instance_feats, roi_semantic, instance_mask, semantic_mask], dim=1)
        fused = F.relu(self.reduce(fused))
        fused = F.relu(self.fusion(fused))
        fused = F.relu(self.expand(fused))
        size = (2 * s, 2 * s)
        fused = F.interpolate(fused, size=size, mode="bilinear", align_corners=False)
        # align_corners=True for the two masks (but not the features), as the authors' SFMStage.
        masks = F.interpolate(torch.cat([instance_mask, semantic_mask], dim=1), size=size,
                              mode="bilinear", align_corners=True)
        return logits, torch.cat([fused, masks], dim=1)
