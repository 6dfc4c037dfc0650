"""Boundary-aware refinement, BAR (RefineMask: Zhang et al., CVPR 2021, Sec. 3.3).

The higher refinement stages of RefineMask are trained on, and at inference only trusted in, a
narrow band around the mask contour; elsewhere the coarser stage's answer is kept.

Boundary region, two rules (``rule=``):

- ``"fraction"`` (default, the authors' code, ``generate_block_target`` of RefineMask's
  ``cross_entropy_loss.py``): a pixel is in the region when more than 10% of its
  ``(2 width + 1)^2`` window has the other label (at width 2: at least 3 of 25 pixels; at
  width 1: at least 1 of 9).
- ``"distance"`` (the paper's wording, Sec. 3.3): the pixels whose chessboard distance to the
  contour is at most ``width``, i.e. the window holds any pixel of the other label. At width 1
  both rules give the same region; at width 2 this one is about 25% wider on curved and
  diagonal edges.

Under both, outside the RoI counts as background. Regions and logits move to the finer stage
as in the authors' code: bilinear with ``align_corners=True``, a region pixel where the
upsampled region is >= 0.5.
"""

from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["BOUNDARY_RULES", "boundary_region", "merge_boundary", "refine_stages",
           "bar_stage_losses"]

#: Names of the boundary rules: the authors' code first (the default), then the paper's.
BOUNDARY_RULES = ("fraction", "distance")


def boundary_region(masks: Tensor, width: int, rule: str = "fraction") -> Tensor:
    """The boundary band of each mask under ``rule`` (see the module docstring).

    Args:
        masks: bool ``[R, H, W]`` binary masks (one per RoI).
        width: boundary width in pixels, >= 1 (RefineMask: 2 for the loss, 1 at inference).
        rule: ``"fraction"`` (authors' code: > 10% of the window has the other label) or
            ``"distance"`` (paper: within ``width`` pixels, chessboard distance, of the contour).

    Returns:
        bool ``[R, H, W]``.

    Raises:
        ValueError: ``masks`` not 3-D bool, ``width`` < 1 or an unknown ``rule``.
    """
    if masks.dtype != torch.bool or masks.dim() != 3:
        raise ValueError(f"masks must be a bool tensor [R, H, W], got {masks.dtype} {tuple(masks.shape)}")
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    if rule not in BOUNDARY_RULES:
        raise ValueError(f"boundary rule must be one of {BOUNDARY_RULES}, got {rule!r}")
    if masks.numel() == 0:
        return masks.clone()
    k = 2 * width + 1
    # Zero padding: the world outside the RoI is background, so a mask reaching the RoI's
    # edge has a boundary there.
    fg = F.pad(masks.float().unsqueeze(1), (width,) * 4, value=0.0)
    # Exact integer counts (float sums of at most k^2 ones) of foreground in each window.
    fg_count = F.avg_pool2d(fg, k, stride=1, divisor_override=1).squeeze(1)
    other = torch.where(masks, k * k - fg_count, fg_count)
    if rule == "distance":
        return other > 0
    # "More than 10% of the window": k^2 is odd, so 10 n > k^2 never ties.
    return other * 10 > k * k


def _upsample_region(region: Tensor, size: Sequence[int]) -> Tensor:
    """bool ``[R, h, w]`` -> bool ``[R, *size]``: bilinear (align_corners) >= 0.5, as the authors."""
    up = F.interpolate(region.unsqueeze(1).float(), size=tuple(size), mode="bilinear",
                       align_corners=True)
    return up.squeeze(1) >= 0.5


def _mask(logits: Tensor) -> Tensor:
    # sigmoid >= 0.5 as the authors, not logits >= 0: the two differ for |logit| < ~3e-8.
    return logits.sigmoid() >= 0.5


def merge_boundary(coarse_logits: Tensor, fine_logits: Tensor, width: int = 1,
                   rule: str = "fraction") -> Tensor:
    """One BAR inference step: the fine stage replaces the coarse one on the coarse boundary.

    As ``RefineRoIHead.simple_test_mask`` of the authors' code, which upsamples the
    *non*-boundary and keeps the coarse logits where it is >= 0.5.

    Args:
        coarse_logits: float ``[R, 1, h, w]`` mask logits of the previous (merged) stage.
        fine_logits: float ``[R, 1, H, W]`` mask logits of the next stage (H, W >= h, w).
        width: boundary width in coarse pixels (RefineMask inference: 1).
        rule: boundary rule (:data:`BOUNDARY_RULES`; the same region at width 1).

    Returns:
        float ``[R, 1, H, W]``: the fine logits inside the boundary region of the coarse mask
        (``sigmoid >= 0.5``), elsewhere the coarse logits upsampled (bilinear,
        ``align_corners=True``).
    """
    size = fine_logits.shape[-2:]
    up = F.interpolate(coarse_logits, size=size, mode="bilinear", align_corners=True)
    inner = ~boundary_region(_mask(coarse_logits[:, 0]), width, rule)
    return torch.where(_upsample_region(inner, size).unsqueeze(1), up, fine_logits)


def refine_stages(stage_logits: Sequence[Tensor], start_stage: int = 1, width: int = 1,
                  rule: str = "fraction") -> Tensor:
    """BAR at inference: merge stages ``start_stage, start_stage + 1, ...`` into the final mask.

    Args:
        stage_logits: per stage float ``[R, 1, s_i, s_i]`` logits, coarse to fine.
        start_stage: first stage taken whole (RefineMask: 1, the 28 x 28 stage).
        width: boundary width used for every merge (RefineMask: 1).
        rule: boundary rule (:data:`BOUNDARY_RULES`).

    Returns:
        float ``[R, 1, s_last, s_last]`` logits.
    """
    merged = stage_logits[start_stage]
    for fine in stage_logits[start_stage + 1:]:
        merged = merge_boundary(merged, fine, width, rule)
    return merged


def bar_stage_losses(
    stage_logits: Sequence[Tensor],
    stage_targets: Sequence[Tensor],
    boundary_width: int = 2,
    start_stage: int = 1,
    rule: str = "fraction",
) -> List[Tensor]:
    """Per-stage binary cross-entropy of RefineMask, boundary-aware after ``start_stage``.

    Stages ``0..start_stage`` are supervised on every pixel. A later stage ``i`` is supervised
    only on the union of the boundary regions (width ``boundary_width``, in stage ``i-1``
    pixels) of the previous stage's predicted mask and of its ground truth, upsampled to stage
    ``i``; the loss is the sum over that region divided by its size (at least 1). The "previous
    predicted mask" is the BAR merge (width 1) of the previous two stages. This is
    ``RefineCrossEntropyLoss`` of the authors' code, step for step.

    Args:
        stage_logits: per stage float ``[R, 1, s_i, s_i]``.
        stage_targets: per stage float ``[R, s_i, s_i]`` in {0, 1}.
        boundary_width: RefineMask: 2.
        start_stage: RefineMask: 1.
        rule: boundary rule (:data:`BOUNDARY_RULES`; default the authors' code).

    Returns:
        list of 0-dim losses, one per stage (unweighted).

    Raises:
        ValueError: different numbers of stage predictions and targets, or a bad ``rule``.
    """
    if len(stage_logits) != len(stage_targets):
        raise ValueError(f"{len(stage_logits)} stage predictions but {len(stage_targets)} targets")
    losses: List[Tensor] = []
    merged = None
    for i, (logits, target) in enumerate(zip(stage_logits, stage_targets)):
        logits = logits[:, 0]
        if i <= start_stage:
            losses.append(F.binary_cross_entropy_with_logits(logits, target))
            merged = _mask(logits.detach())
            continue
        with torch.no_grad():
            region = boundary_region(merged, boundary_width, rule)
            region |= boundary_region(stage_targets[i - 1] >= 0.5, boundary_width, rule)
            region = _upsample_region(region, logits.shape[-2:])
            # The merged mask for the next stage, as the authors' loss builds it: the
            # upsampled boundary (not the non-boundary, as at inference) decides, and off it
            # the previous stage's own logits are kept (the same as the merged ones while only
            # one stage follows the start stage, as in RefineMask's four).
            fine = stage_logits[i].detach()
            on_boundary = _upsample_region(boundary_region(merged, 1, rule), fine.shape[-2:])
            coarse = F.interpolate(stage_logits[i - 1].detach(), size=fine.shape[-2:],
                                   mode="bilinear", align_corners=True)
            merged = _mask(torch.where(on_boundary.unsqueeze(1), fine, coarse)[:, 0])
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        losses.append(per_pixel[region].sum() / region.sum().clamp(min=1))
    return losses
