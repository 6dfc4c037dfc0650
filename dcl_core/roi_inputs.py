"""What every mask-head loss of the project shares: the input check and the exact zero.

Every loss module takes ``forward(features [R, C, H, W] float, gt_masks [R, H, W] bool,
mask_logits: Optional[[R, H, W] float] = None, ...)`` and refuses anything else with one line.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

__all__ = ["check_roi_inputs", "exact_zero"]


def exact_zero(tensor: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """An exact 0-dim 0 that still depends on ``tensor`` and every parameter of ``module``, so
    autograd and DDP (which expects every parameter to receive a gradient) see them used.
    float32 for half inputs, like the losses' other paths."""
    zero = tensor.sum() * 0.0
    for p in module.parameters():
        zero = zero + p.sum() * 0.0
    return zero.float() if zero.dtype in (torch.float16, torch.bfloat16) else zero


def _kind(x) -> str:
    return str(x.dtype) if isinstance(x, torch.Tensor) else type(x).__name__


def check_roi_inputs(
    features: torch.Tensor,
    gt_masks: torch.Tensor,
    channels: int,
    mask_logits: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> None:
    """Check the common forward arguments of a mask-head loss.

    Args:
        features: floating ``[R, C, H, W]`` RoI features.
        gt_masks: bool ``[R, H, W]`` ground-truth masks at the features' resolution.
        channels: the C the loss was built for.
        mask_logits: optional floating ``[R, H, W]`` mask logits of the RoIs' classes.
        generator: optional ``torch.Generator`` for the loss's random draws.

    Raises:
        TypeError: features or mask_logits not floating, gt_masks not bool.
        ValueError: shapes not ``[R, C, H, W]`` / ``[R, H, W]``, R/H/W mismatch, C !=
            ``channels``, or tensors (or the generator) on different devices.
    """
    if not isinstance(features, torch.Tensor) or not features.is_floating_point():
        raise TypeError(f"features must be a floating torch.Tensor [R, C, H, W], got "
                        f"{_kind(features)}")
    if not isinstance(gt_masks, torch.Tensor) or gt_masks.dtype != torch.bool:
        raise TypeError(f"gt_masks must be a bool torch.Tensor [R, H, W], got {_kind(gt_masks)}; "
                        "threshold it explicitly (e.g. masks >= 0.5)")
    if features.dim() != 4 or gt_masks.dim() != 3:
        raise ValueError("expected features [R, C, H, W] and gt_masks [R, H, W], got "
                         f"features {tuple(features.shape)} and gt_masks {tuple(gt_masks.shape)}")
    r, c, h, w = features.shape
    if gt_masks.shape != (r, h, w):
        raise ValueError(f"features {tuple(features.shape)} and gt_masks {tuple(gt_masks.shape)} "
                         "disagree in R, H or W")
    if c != channels:
        raise ValueError(f"features have C={c} channels {tuple(features.shape)} but the loss was "
                         f"built with channels={channels}")
    if features.device != gt_masks.device:
        raise ValueError(f"features are on {features.device} but gt_masks are on "
                         f"{gt_masks.device}")
    if mask_logits is not None:
        if not isinstance(mask_logits, torch.Tensor) or not mask_logits.is_floating_point():
            raise TypeError(f"mask_logits must be a floating torch.Tensor [R, H, W], got "
                            f"{_kind(mask_logits)}")
        if mask_logits.dim() != 3:
            raise ValueError("expected features [R, C, H, W], gt_masks and mask_logits [R, H, W], "
                             f"got mask_logits {tuple(mask_logits.shape)}")
        if mask_logits.shape != (r, h, w):
            raise ValueError(f"features {tuple(features.shape)} and mask_logits "
                             f"{tuple(mask_logits.shape)} disagree in R, H or W")
        if mask_logits.device != features.device:
            raise ValueError(f"mask_logits are on {mask_logits.device} but features are on "
                             f"{features.device}")
    if generator is not None and generator.device.type != features.device.type:
        raise ValueError(f"generator is on {generator.device} but features are on "
                         f"{features.device}")
