"""SparseInst's instance context encoder (Cheng et al., CVPR 2022, Sec. 3.2, Figure 3)."""

from __future__ import annotations

from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from fvcore.nn import weight_init
from torch import nn

from detectron2.layers import Conv2d, ShapeSpec, get_norm

__all__ = ["PyramidPoolingModule", "InstanceContextEncoder"]


def conv(in_channels: int, out_channels: int, kernel_size: int, norm: str = "",
         relu: bool = False) -> Conv2d:
    """``kernel_size`` conv with 'same' padding, optional norm ("" = none) and ReLU."""
    return Conv2d(
        in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=not norm,
        norm=get_norm(norm, out_channels), activation=F.relu if relu else None,
    )


class PyramidPoolingModule(nn.Module):
    """Pyramid pooling (Zhao et al., PSPNet, CVPR 2017) as SparseInst uses it on C5.

    Average-pools the input to ``sizes`` x ``sizes`` grids, maps each to ``channels`` with a
    1x1 conv + ReLU, upsamples back, concatenates with the input and fuses with a 1x1 conv +
    ReLU to ``in_channels``: a receptive field covering the whole image at low cost.

    Input and output: float ``[B, in_channels, H, W]``.
    """

    def __init__(self, in_channels: int, channels: int, sizes: Sequence[int] = (1, 2, 3, 6),
                 norm: str = ""):
        super().__init__()
        self.sizes = tuple(sizes)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), nn.Conv2d(in_channels, channels, 1))
            for s in self.sizes
        )
        self.bottleneck = conv(in_channels + len(self.sizes) * channels, in_channels, 1,
                               norm=norm, relu=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [
            F.interpolate(F.relu(stage(x)), size=size, mode="bilinear", align_corners=False)
            for stage in self.stages
        ]
        return self.bottleneck(torch.cat(pooled + [x], dim=1))


class InstanceContextEncoder(nn.Module):
    """FPN-like fusion of C3-C5 with pyramid pooling on C5, output at stride 8 (Sec. 3.2).

    Top-down: lateral 1x1 convs bring C3, C4, C5 to ``channels``; the C5 lateral passes the
    pyramid pooling module; each coarser level is upsampled (nearest, x2) and added to the next
    lateral; a 3x3 conv gives P3, P4, P5. P4 and P5 are upsampled (bilinear) to P3's size, the
    three are concatenated and fused by a 1x1 conv.

    Args:
        input_shape: the backbone's output shapes, e.g. ``backbone.output_shape()``.
        in_features: names of C3, C4, C5 in ``input_shape`` (strides 8, 16, 32), fine to coarse.
        channels: output channels (paper: 256).
        norm: norm of the 1x1/3x3 convs ("" = none, as the authors).

    Forward: ``{name: float [B, C_l, H/s_l, W/s_l]}`` -> float ``[B, channels, H/8, W/8]``
    (the size of the first ``in_features`` map).

    Raises:
        ValueError: ``in_features`` not three names of ``input_shape``.
    """

    def __init__(self, input_shape: Dict[str, ShapeSpec], in_features: List[str],
                 channels: int = 256, norm: str = ""):
        super().__init__()
        missing = [f for f in in_features if f not in input_shape]
        if len(in_features) != 3 or missing:
            raise ValueError(
                f"SparseInst's encoder needs 3 backbone features (C3, C4, C5), got {in_features}"
                f" with {sorted(input_shape)} available"
            )
        self.in_features = list(in_features)
        in_channels = [input_shape[f].channels for f in self.in_features]
        self.lateral_convs = nn.ModuleList(conv(c, channels, 1, norm=norm) for c in in_channels)
        self.output_convs = nn.ModuleList(conv(channels, channels, 3, norm=norm)
                                          for _ in in_channels)
        self.ppm = PyramidPoolingModule(channels, channels // 4, norm=norm)
        self.fusion = conv(channels * len(in_channels), channels, 1, norm=norm)
        for layer in [*self.lateral_convs, *self.output_convs]:
            weight_init.c2_xavier_fill(layer)
        weight_init.c2_msra_fill(self.fusion)
        self.out_channels = channels

    def forward(self, features: Dict[str, torch.Tensor]) -> torch.Tensor:
        c3, c4, c5 = (features[f] for f in self.in_features)
        top = self.ppm(self.lateral_convs[2](c5))
        outs = [self.output_convs[2](top)]
        for x, lateral, output in ((c4, self.lateral_convs[1], self.output_convs[1]),
                                   (c3, self.lateral_convs[0], self.output_convs[0])):
            lat = lateral(x)
            # size=, not scale_factor=2: odd sizes (unpadded inputs) still line up.
            top = lat + F.interpolate(top, size=lat.shape[-2:], mode="nearest")
            outs.append(output(top))
        p5, p4, p3 = outs
        size = p3.shape[-2:]
        up = [F.interpolate(p, size=size, mode="bilinear", align_corners=False) for p in (p4, p5)]
        return self.fusion(torch.cat([p3, *up], dim=1))
