"""RefineMask's semantic head (Zhang et al., CVPR 2021, Sec. 3.1).

A small fully convolutional head on the finest FPN level (P2, stride 4) that segments the whole
image into foreground (any instance) and background. Its features and its mask feed every
semantic fusion stage of the mask head; it is trained with binary cross-entropy against the
union of the instance masks, as in the authors' code (resized to P2 bilinearly, thresholded at
0.5).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

__all__ = ["SemanticHead", "semantic_targets"]


class SemanticHead(BaseModule):
    """``num_convs`` 3x3 convs then a 1x1 foreground classifier.

    Args:
        in_channels: channels of the FPN level it reads (256 in R50-FPN).
        channels: channels of its convs (256 in RefineMask).
        num_convs: RefineMask: 4.
        conv_cfg, norm_cfg: mmcv ConvModule configs.
    """

    def __init__(self, in_channels: int = 256, channels: int = 256, num_convs: int = 4,
                 conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.convs = nn.ModuleList(
            ConvModule(in_channels if i == 0 else channels, channels, 3, padding=1,
                       conv_cfg=conv_cfg, norm_cfg=norm_cfg)
            for i in range(num_convs)
        )
        self.channels = channels if num_convs > 0 else in_channels
        self.logits = nn.Conv2d(self.channels, 1, 1)

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.kaiming_normal_(self.logits.weight, mode="fan_out", nonlinearity="relu")
        nn.init.constant_(self.logits.bias, 0)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """``[B, C_in, h, w]`` -> (features ``[B, channels, h, w]``, logits ``[B, 1, h, w]``)."""
        for conv in self.convs:
            x = conv(x)
        return x, self.logits(x)


def semantic_targets(instance_masks: Sequence, size: Tuple[int, int], stride: int,
                     device: torch.device) -> Tensor:
    """Binary foreground targets for the semantic head.

    Args:
        instance_masks: per image an mmdet ``BitmapMasks``/``PolygonMasks`` (``[N, H, W]``, at
            the network input scale, padded or not).
        size: ``(h, w)`` of the semantic logits.
        stride: input pixels per semantic pixel (4).
        device: where the targets go.

    Returns:
        float ``[B, h, w]`` in {0, 1}: the union of an image's instance masks, placed at the
        top-left of the padded input ``(h * stride, w * stride)``, resized bilinearly to
        ``(h, w)`` and thresholded at 0.5.
    """
    h, w = size
    full = torch.zeros((len(instance_masks), 1, h * stride, w * stride), device=device)
    for i, masks in enumerate(instance_masks):
        union = masks.to_tensor(dtype=torch.bool, device=device).any(dim=0)
        mh, mw = min(union.shape[0], h * stride), min(union.shape[1], w * stride)
        full[i, 0, :mh, :mw] = union[:mh, :mw].float()
    small = F.interpolate(full, size=(h, w), mode="bilinear", align_corners=False)
    return (small[:, 0] >= 0.5).float()
