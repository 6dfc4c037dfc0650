"""SparseInst's training losses (Cheng et al., CVPR 2022, Sec. 3.5, Eq. 3)."""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from fvcore.nn import sigmoid_focal_loss

from .matcher import HungarianMatcher

__all__ = ["dice_loss", "mask_iou", "SparseInstCriterion"]


def dice_loss(mask_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-instance dice loss 1 - DICE(sigmoid(m), t): float ``[M]`` from ``[M, P]`` inputs."""
    probs = mask_logits.sigmoid()
    numerator = 2.0 * (probs * targets).sum(-1)
    denominator = (probs * probs).sum(-1) + (targets * targets).sum(-1)
    return 1.0 - numerator / (denominator + 1e-4)


@torch.no_grad()
def mask_iou(mask_logits: torch.Tensor, targets: torch.Tensor,
             threshold: float = 0.4) -> torch.Tensor:
    """IoU of each binarised prediction with its target: float ``[M]`` from ``[M, P]`` inputs.

    Predictions are binarised at probability ``threshold`` (0.4, the authors' code) and targets
    at 0.5. This IoU is the objectness target (SparseInst Sec. 3.5, IoU-aware objectness).
    """
    pred = (mask_logits.sigmoid() >= threshold).float()
    gt = (targets > 0.5).float()
    inter = (pred * gt).sum(-1)
    union = pred.sum(-1) + gt.sum(-1) - inter
    return inter / (union + 1e-6)


def _num_instances(count: int, device: torch.device) -> float:
    """Ground truths per worker, averaged over workers and at least 1 (DETR-style normaliser)."""
    total = torch.tensor(float(count), device=device)
    world = 1
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(total)
        world = dist.get_world_size()
    return max(total.item() / world, 1.0)


class SparseInstCriterion:
    """Match predictions to ground truths, then SparseInst's weighted losses (Eq. 3).

    - ``loss_cls``: sigmoid focal loss (alpha 0.25, gamma 2) over all N x K class logits; the
      matched predictions' targets are their ground truths' classes, all others background;
      summed and divided by the number of ground truths. Weight 2.0.
    - ``loss_dice``: dice loss of each matched mask, summed / number of ground truths. Weight 2.0.
    - ``loss_mask``: pixel-wise binary cross-entropy of the matched masks, mean over their
      pixels. Weight 5.0.
    - ``loss_objectness``: binary cross-entropy of each matched prediction's objectness logit
      against the IoU of its (binarised) mask with its ground truth, mean. Weight 1.0.

    The number of ground truths is averaged over distributed workers (at least 1).

    Args:
        matcher: the bipartite matcher.
        class_weight, dice_weight, pixel_weight, objectness_weight: loss weights.
        focal_alpha, focal_gamma: focal-loss parameters.

    Call: ``criterion(outputs, targets)`` with the decoder's ``logits`` [B, N, K],
    ``objectness`` [B, N, 1] and ``masks`` [B, N, h, w] (logits), and per image a pair
    (target masks float ``[T_b, h, w]`` in [0, 1], classes int64 ``[T_b]``). Returns
    ``(losses, indices)``: the four weighted 0-dim losses and the matcher's output.
    """

    def __init__(self, matcher: HungarianMatcher, class_weight: float = 2.0,
                 dice_weight: float = 2.0, pixel_weight: float = 5.0,
                 objectness_weight: float = 1.0, focal_alpha: float = 0.25,
                 focal_gamma: float = 2.0):
        self.matcher = matcher
        self.weights = {"loss_cls": class_weight, "loss_dice": dice_weight,
                        "loss_mask": pixel_weight, "loss_objectness": objectness_weight}
        self.focal_alpha, self.focal_gamma = focal_alpha, focal_gamma

    def __call__(self, outputs: Dict[str, torch.Tensor],
                 targets: List[Tuple[torch.Tensor, torch.Tensor]]):
        logits, objectness, masks = outputs["logits"], outputs["objectness"], outputs["masks"]
        indices = self.matcher(masks, logits, targets)
        num = _num_instances(sum(len(c) for _, c in targets), logits.device)

        batch_idx = torch.cat([torch.full_like(src, b) for b, (src, _) in enumerate(indices)])
        src_idx = torch.cat([src for src, _ in indices])
        batch_idx, src_idx = batch_idx.to(logits.device), src_idx.to(logits.device)

        cls_targets = torch.zeros_like(logits)
        matched_classes = torch.cat([c[tgt.to(c.device)]
                                     for (_, c), (_, tgt) in zip(targets, indices)])
        cls_targets[batch_idx, src_idx, matched_classes.to(logits.device)] = 1.0
        losses = {
            "loss_cls": sigmoid_focal_loss(logits, cls_targets, alpha=self.focal_alpha,
                                           gamma=self.focal_gamma, reduction="sum") / num,
        }

        if len(src_idx) == 0:
            # No ground truth in the batch: exact zeros that keep every output in the graph.
            zero = masks.sum() * 0.0 + objectness.sum() * 0.0
            losses.update(loss_dice=zero, loss_mask=zero, loss_objectness=zero)
        else:
            pred = masks[batch_idx, src_idx].flatten(1)
            gt = torch.cat([m[tgt.to(m.device)] for (m, _), (_, tgt) in zip(targets, indices)])
            gt = gt.flatten(1).to(pred.dtype)
            losses["loss_dice"] = dice_loss(pred, gt).sum() / num
            losses["loss_mask"] = F.binary_cross_entropy_with_logits(pred, gt, reduction="mean")
            losses["loss_objectness"] = F.binary_cross_entropy_with_logits(
                objectness[batch_idx, src_idx, 0], mask_iou(pred, gt), reduction="mean")
        return {k: v * self.weights[k] for k, v in losses.items()}, indices
