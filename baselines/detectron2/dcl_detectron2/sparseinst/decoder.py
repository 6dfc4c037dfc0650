"""SparseInst's IAM-based decoder (Cheng et al., CVPR 2022, Sec. 3.3-3.4, Figure 4)."""

from __future__ import annotations

import math
from typing import Dict

import torch
import torch.nn.functional as F
from fvcore.nn import weight_init
from torch import nn

from .encoder import conv

__all__ = ["IAM_ACTIVATIONS", "InstanceBranch", "MaskBranch", "IAMDecoder", "coordinates"]

IAM_ACTIVATIONS = ("sigmoid", "softmax")
_PRIOR_PROB = 0.01  # focal-loss prior: class and IAM logits start near p = 0.01


def conv_stack(num_convs: int, in_channels: int, channels: int, norm: str) -> nn.Sequential:
    """``num_convs`` 3x3 conv (+ norm) + ReLU layers, MSRA-initialised."""
    layers = []
    for i in range(num_convs):
        layer = conv(in_channels if i == 0 else channels, channels, 3, norm=norm, relu=True)
        weight_init.c2_msra_fill(layer)
        layers.append(layer)
    return nn.Sequential(*layers)


def coordinates(x: torch.Tensor) -> torch.Tensor:
    """Normalised pixel coordinates of ``x`` [B, C, H, W]: float ``[B, 2, H, W]`` in [-1, 1].

    Channel 0 is x, channel 1 is y. SparseInst concatenates them to the encoder output
    (Sec. 3.3) so the location-agnostic convolutions can tell alike instances apart.
    """
    b, _, h, w = x.shape
    ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y]).unsqueeze(0).expand(b, 2, h, w)


class InstanceBranch(nn.Module):
    """Instance activation maps and the per-instance predictions (Sec. 3.3, Eq. 1).

    Convs -> a 3x3 conv predicts N activation maps A (``iam``); each instance feature is the
    A-weighted mean of the branch's features, z_i = sum_p A_i(p) X(p) / sum_p A_i(p) (sigmoid
    maps; or a softmax over pixels, which needs no division). Linear layers then give the class
    logits, the mask kernel (length D) and the objectness logit.

    G-IAM (``groups`` G > 1, Sec. 3.4): a grouped conv predicts G maps per instance; the G
    aggregated features are concatenated and fused by a linear layer + ReLU before the heads.

    Args:
        in_channels: channels of the input (encoder channels + 2 coordinates).
        num_classes: K, class logits per instance (sigmoid, no background class).
        num_masks: N, instances predicted per image.
        kernel_dim: D, length of each mask kernel.
        dim, num_convs: width and depth of the branch's 3x3 convs.
        groups: G, activation maps per instance (1 = IAM).
        activation: "sigmoid" or "softmax" normalisation of the maps.
        norm: norm of the convs ("" = none).

    Forward: float ``[B, in_channels, H, W]`` -> dict of ``logits`` [B, N, K],
    ``kernels`` [B, N, D], ``objectness`` [B, N, 1] (logits) and ``iam`` [B, N * G, H, W]
    (map logits).

    Raises:
        ValueError: unknown ``activation`` or ``groups`` < 1.
    """

    def __init__(self, in_channels: int, num_classes: int, num_masks: int = 100,
                 kernel_dim: int = 128, dim: int = 256, num_convs: int = 4, groups: int = 1,
                 activation: str = "sigmoid", norm: str = ""):
        super().__init__()
        if activation not in IAM_ACTIVATIONS:
            raise ValueError(f"IAM activation must be one of {IAM_ACTIVATIONS}, got {activation!r}")
        if groups < 1:
            raise ValueError(f"IAM groups must be >= 1, got {groups}")
        self.num_masks, self.groups, self.activation = num_masks, groups, activation
        self.convs = conv_stack(num_convs, in_channels, dim, norm)
        self.iam_conv = nn.Conv2d(dim, num_masks * groups, 3, padding=1, groups=groups)
        feat_dim = dim * groups
        self.fuse = nn.Linear(feat_dim, feat_dim) if groups > 1 else None
        self.cls_score = nn.Linear(feat_dim, num_classes)
        self.mask_kernel = nn.Linear(feat_dim, kernel_dim)
        self.objectness = nn.Linear(feat_dim, 1)

        prior_bias = -math.log((1 - _PRIOR_PROB) / _PRIOR_PROB)
        for layer in (self.iam_conv, self.cls_score):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.constant_(layer.bias, prior_bias)
        nn.init.normal_(self.mask_kernel.weight, std=0.01)
        nn.init.zeros_(self.mask_kernel.bias)
        if self.fuse is not None:
            weight_init.c2_xavier_fill(self.fuse)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        x = self.convs(x)
        iam = self.iam_conv(x)
        b, c = x.shape[:2]
        flat = iam.flatten(2)  # [B, N * G, HW]
        if self.activation == "sigmoid":
            weights = flat.sigmoid()
            weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-6)
        else:
            weights = flat.softmax(-1)
        inst = torch.bmm(weights, x.flatten(2).transpose(1, 2))  # [B, N * G, C]
        if self.fuse is not None:
            # The grouped conv orders its maps group-major: channel g * N + i is map g of i.
            inst = inst.view(b, self.groups, self.num_masks, c).transpose(1, 2)
            inst = F.relu(self.fuse(inst.reshape(b, self.num_masks, self.groups * c)))
        return {
            "logits": self.cls_score(inst),
            "kernels": self.mask_kernel(inst),
            "objectness": self.objectness(inst),
            "iam": iam,
        }


class MaskBranch(nn.Module):
    """Mask features (Sec. 3.3): 3x3 convs then a 1x1 projection to D = ``kernel_dim`` channels.

    Forward: float ``[B, in_channels, H, W]`` -> float ``[B, kernel_dim, H, W]``. These are the
    features the dense contrastive loss supervises in SparseInst (DCL paper Sec. 5.2).
    """

    def __init__(self, in_channels: int, kernel_dim: int = 128, dim: int = 256,
                 num_convs: int = 4, norm: str = ""):
        super().__init__()
        self.convs = conv_stack(num_convs, in_channels, dim, norm)
        self.projection = nn.Conv2d(dim, kernel_dim, 1)
        weight_init.c2_msra_fill(self.projection)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.convs(x))


class IAMDecoder(nn.Module):
    """Instance branch + mask branch on the encoder output with coordinates (Figure 4).

    Masks are the dot products of each instance's kernel with the mask features at every
    pixel, m_i = w_i . M (Sec. 3.3), bilinearly upsampled by ``scale_factor`` (2: stride 8 ->
    stride 4, as the authors).

    Forward: float ``[B, C, H/8, W/8]`` -> dict of ``logits`` [B, N, K], ``objectness``
    [B, N, 1], ``kernels`` [B, N, D], ``masks`` [B, N, H/8 * s, W/8 * s] (mask logits),
    ``mask_features`` [B, D, H/8, W/8] and ``iam`` [B, N * G, H/8, W/8].
    """

    def __init__(self, instance_branch: InstanceBranch, mask_branch: MaskBranch,
                 scale_factor: float = 2.0):
        super().__init__()
        self.instance_branch = instance_branch
        self.mask_branch = mask_branch
        self.scale_factor = float(scale_factor)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        x = torch.cat([coordinates(x), x], dim=1)
        out = self.instance_branch(x)
        mask_features = self.mask_branch(x)
        b, d, h, w = mask_features.shape
        masks = torch.bmm(out["kernels"], mask_features.flatten(2)).view(b, -1, h, w)
        if self.scale_factor != 1.0:
            masks = F.interpolate(masks, scale_factor=self.scale_factor, mode="bilinear",
                                  align_corners=False)
        out.update(masks=masks, mask_features=mask_features)
        return out
