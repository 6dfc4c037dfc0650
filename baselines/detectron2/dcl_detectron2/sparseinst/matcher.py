"""SparseInst's bipartite matching of predictions to ground truths (Cheng et al., Sec. 3.5)."""

from __future__ import annotations

from typing import List, Tuple

import torch
from scipy.optimize import linear_sum_assignment

__all__ = ["pairwise_dice", "matching_cost", "HungarianMatcher"]

_EPS = 1e-4


def pairwise_dice(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Dice coefficient of every prediction with every target (SparseInst Eq. 2's DICE).

    DICE(m, t) = 2 sum(m t) / (sum(m^2) + sum(t^2)).

    Args:
        pred: float ``[N, P]`` mask probabilities in [0, 1] (P pixels).
        target: float ``[T, P]`` target masks in [0, 1] (soft values allowed).

    Returns:
        float ``[N, T]`` in [0, 1].
    """
    numerator = 2.0 * pred @ target.t()
    denominator = (pred * pred).sum(-1)[:, None] + (target * target).sum(-1)[None, :]
    return numerator / (denominator + _EPS)


def matching_cost(mask_probs: torch.Tensor, class_probs: torch.Tensor,
                  target_masks: torch.Tensor, target_classes: torch.Tensor,
                  alpha: float = 0.8) -> torch.Tensor:
    """SparseInst's matching score C(i, k) = p_{i, c_k}^(1 - alpha) x DICE(m_i, t_k)^alpha (Eq. 2).

    Higher is better (the assignment maximises it).

    Args:
        mask_probs: float ``[N, P]`` predicted mask probabilities.
        class_probs: float ``[N, K]`` predicted class probabilities (sigmoid).
        target_masks: float ``[T, P]`` target masks at the same resolution.
        target_classes: int64 ``[T]`` contiguous class ids in [0, K).
        alpha: weight of the mask term (paper: 0.8).

    Returns:
        float ``[N, T]``.
    """
    dice = pairwise_dice(mask_probs, target_masks)
    prob = class_probs[:, target_classes]
    return dice.pow(alpha) * prob.pow(1.0 - alpha)


class HungarianMatcher:
    """One-to-one assignment of the N predictions of an image to its T ground truths.

    Maximises the sum of :func:`matching_cost` with the Hungarian algorithm
    (``scipy.optimize.linear_sum_assignment``), so each ground truth gets exactly one
    prediction (T <= N) and the others are trained as background: no NMS needed.

    Args:
        alpha: weight of the mask term in the cost (SparseInst: 0.8).

    Call: ``matcher(mask_logits, class_logits, targets)`` with mask logits float
    ``[B, N, H, W]``, class logits float ``[B, N, K]`` and per image a pair (masks float
    ``[T_b, H, W]`` in [0, 1] at the predictions' resolution, classes int64 ``[T_b]``).
    Returns per image a pair of int64 ``[M_b]`` tensors on the CPU (prediction indices, target
    indices), M_b = min(N, T_b), sorted by prediction index.

    Raises:
        ValueError: a target's masks not at the predictions' resolution, or a class id out
            of range.
        FloatingPointError: the cost is not finite (diverged predictions).
    """

    def __init__(self, alpha: float = 0.8):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"matcher alpha must be in [0, 1], got {alpha}")
        self.alpha = float(alpha)

    @torch.no_grad()
    def __call__(self, mask_logits: torch.Tensor, class_logits: torch.Tensor,
                 targets: List[Tuple[torch.Tensor, torch.Tensor]]
                 ) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        num_classes = class_logits.shape[-1]
        out = []
        for masks, probs, (t_masks, t_classes) in zip(
            mask_logits.float().sigmoid(), class_logits.float().sigmoid(), targets
        ):
            if t_masks.shape[-2:] != masks.shape[-2:]:
                raise ValueError(f"target masks {tuple(t_masks.shape)} are not at the predicted "
                                 f"mask size {tuple(masks.shape[-2:])}")
            if len(t_classes) == 0:
                empty = torch.zeros(0, dtype=torch.int64)
                out.append((empty, empty))
                continue
            if int(t_classes.min()) < 0 or int(t_classes.max()) >= num_classes:
                raise ValueError(f"target class ids must lie in [0, {num_classes}), got "
                                 f"{t_classes.tolist()}")
            cost = matching_cost(masks.flatten(1), probs, t_masks.flatten(1).float(),
                                 t_classes, self.alpha)
            cost = cost.cpu()
            if not torch.isfinite(cost).all():
                raise FloatingPointError("SparseInst matching cost is not finite: predictions "
                                         "diverged (NaN/inf); lower the learning rate")
            rows, cols = linear_sum_assignment(cost.numpy(), maximize=True)
            out.append((torch.as_tensor(rows, dtype=torch.int64),
                        torch.as_tensor(cols, dtype=torch.int64)))
        return out
