"""Boundary-aware refinement, BAR (RefineMask: Zhang et al., CVPR 2021, Sec. 3.3).

The higher refinement stages of RefineMask are trained on, and at inference only trusted in, a
narrow band around the mask contour; elsewhere the coarser stage's answer is kept.

Boundary region (paper): the pixels whose distance to the mask contour is at most ``width``
pixels. Here distance is the chessboard distance, i.e. a pixel is in the region when its
``(2 width + 1)^2`` window holds both foreground and background; outside the RoI counts as
background. The authors' code uses a slightly different rule (a pixel counts when more than 10%
of its window has the other label); the paper's definition is followed here.
"""

from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["boundary_region", "merge_boundary", "refine_stages", "bar_stage_losses"]


def boundary_region(masks: Tensor, width: int) -> Tensor:
    """Pixels within ``width`` pixels (chessboard distance) of the contour of each mask.

    Args:
        masks: bool ``[R, H, W]`` binary masks (one per RoI).
        width: boundary width in pixels, >= 1 (RefineMask: 2 for the loss, 1 at inference).

    Returns:
        bool ``[R, H, W]``.

    Raises:
        ValueError: ``masks`` not 3-D bool, or ``width`` < 1.
    """
    if masks.dtype != torch.bool or masks.dim() != 3:
        raise ValueError(f"masks must be a bool tensor [R, H, W], got {masks.dtype} {tuple(masks.shape)}")
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    if masks.numel() == 0:
        return masks.clone()
    m = masks.float().unsqueeze(1)
    k = 2 * width + 1
    pad = (width,) * 4
    # Zero padding: the world outside the RoI is background, so a mask reaching the RoI's
    # edge has a boundary there.
    dilated = F.max_pool2d(F.pad(m, pad, value=0.0), k, stride=1)
    eroded = -F.max_pool2d(F.pad(-m, pad, value=0.0), k, stride=1)
    return ((dilated > 0.5) & (eroded < 0.5)).squeeze(1)


def _upsample_region(region: Tensor, size: Sequence[int]) -> Tensor:
    return F.interpolate(region.unsqueeze(1).float(), size=tuple(size), mode="nearest").squeeze(1) > 0.5


def merge_boundary(coarse_logits: Tensor, fine_logits: Tensor, width: int = 1) -> Tensor:
    """One BAR inference step: the fine stage replaces the coarse one on the coarse boundary.

    Args:
        coarse_logits: float ``[R, 1, h, w]`` mask logits of the previous (merged) stage.
        fine_logits: float ``[R, 1, H, W]`` mask logits of the next stage (H, W >= h, w).
        width: boundary width in coarse pixels (RefineMask inference: 1).

    Returns:
        float ``[R, 1, H, W]``: the upsampled coarse logits, with the fine logits inside the
        boundary region of the coarse mask (``sigmoid >= 0.5``, i.e. logit >= 0).
    """
    size = fine_logits.shape[-2:]
    up = F.interpolate(coarse_logits, size=size, mode="bilinear", align_corners=False)
    region = _upsample_region(boundary_region(coarse_logits[:, 0] >= 0, width), size)
    return torch.where(region.unsqueeze(1), fine_logits, up)


def refine_stages(stage_logits: Sequence[Tensor], start_stage: int = 1, width: int = 1) -> Tensor:
    """BAR at inference: merge stages ``start_stage, start_stage + 1, ...`` into the final mask.

    Args:
        stage_logits: per stage float ``[R, 1, s_i, s_i]`` logits, coarse to fine.
        start_stage: first stage taken whole (RefineMask: 1, the 28 x 28 stage).
        width: boundary width used for every merge (RefineMask: 1).

    Returns:
        float ``[R, 1, s_last, s_last]`` logits.
    """
    merged = stage_logits[start_stage]
    for fine in stage_logits[start_stage + 1:]:
        merged = merge_boundary(merged, fine, width)
    return merged


def bar_stage_losses(
    stage_logits: Sequence[Tensor],
    stage_targets: Sequence[Tensor],
    boundary_width: int = 2,
    start_stage: int = 1,
) -> List[Tensor]:
    """Per-stage binary cross-entropy of RefineMask, boundary-aware after ``start_stage``.

    Stages ``0..start_stage`` are supervised on every pixel. A later stage ``i`` is supervised
    only on the union of the boundary regions (width ``boundary_width``, in stage ``i-1``
    pixels) of the previous stage's predicted mask and of its ground truth, upsampled to stage
    ``i``; the loss is the mean over that region (0 where it is empty). The "previous predicted
    mask" is the BAR merge of the stages so far, as at inference.

    Args:
        stage_logits: per stage float ``[R, 1, s_i, s_i]``.
        stage_targets: per stage float ``[R, s_i, s_i]`` in {0, 1}.
        boundary_width: RefineMask: 2.
        start_stage: RefineMask: 1.

    Returns:
        list of 0-dim losses, one per stage (unweighted).
    """
    if len(stage_logits) != len(stage_targets):
        raise ValueError(f"{len(stage_logits)} stage predictions but {len(stage_targets)} targets")
    losses: List[Tensor] = []
    merged = None
    for i, (logits, target) in enumerate(zip(stage_logits, stage_targets)):
        logits = logits[:, 0]
        if i <= start_stage:
            losses.append(F.binary_cross_entropy_with_logits(logits, target))
            merged = stage_logits[i].detach()
            continue
        with torch.no_grad():
            region = boundary_region(merged[:, 0] >= 0, boundary_width)
            region |= boundary_region(stage_targets[i - 1] >= 0.5, boundary_width)
            region = _upsample_region(region, logits.shape[-2:])
            merged = merge_boundary(merged, stage_logits[i].detach(), width=1)
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        losses.append((per_pixel * region).sum() / region.sum().clamp(min=1))
    return losses
