"""CAC, the confidence-aware contrastive loss (Confidence-Aware Contrastive Learning for Semantic
Segmentation, ACM MM 2023), semantic-segmentation form, framework-free PyTorch.

Source: the authors' code (CVIU-CSU/Confidence-Aware-Contrastive-Loss at 9bdde78/278b0ec,
``mmseg/models/losses/cac_loss.py`` and ``decode_heads/cac_fcn_head.py``), as written up in
shared/reference/contrastmask-cac.md part B. The paper's equations could not be read, so the
"alternative" options below are the conventional forms the code visibly departs from, not
equations checked against the paper.

Stable API (the mmseg plug-in wraps these; the binary RoI form, :mod:`dcl_core.cac_roi`,
reuses the functions)::

    CACLoss(loss_weight=0.1, temperature=0.1, base_temperature=0.07, max_sample=1024,
            threshold=100, ignore_index=255, *, anchor_picking="sorted",
            hard_pixels="missed", class_reduction="official", positive_normalizer="count",
            detach_keys=False)
        .forward(embeddings [B, D, h, w] float, labels [B, H, W] int64,
                 seg_logits [B, K, h, w] float, weight_logits [B, K, h, w] float,
                 generator=None) -> 0-dim float32 tensor
    CACProjectionHead(in_channels, channels=256, norm_layer=nn.BatchNorm2d)   # x -> z
    CACWeightBranch(in_channels, num_classes, channels=None, kernel_size=1,
                    norm_layer=nn.BatchNorm2d, loss_factor=1.5)   # x -> logits, x detached
    select_anchors(labels [G, P] int64, class_prob [G, P, K] float, pred [G, P] int64,
                   num_classes, *, max_sample, threshold, budget="total", ...)
        -> AnchorSelection(group [N], pixel [N], label [N], cls [N])
    weighted_contrast(embeddings [Q, M, D], labels [Q, M], confidences [Q, M, K],
                      valid [Q, M], ...) -> [Q, M] per-anchor loss
    reduce_classes(anchor_loss [Q, M], labels [Q, M], valid [Q, M], num_classes,
                   class_reduction) -> ([Q] loss, [Q] bool has_anchors)

Defaults are the official code's, with the Cityscapes configs' sorted picking (the class
default is random picking; every config sets ``hard_sort_hardmining=easy_sort_hardmining=True``)
and the class default ``loss_weight=0.1`` (the configs set 0.4 HRNet-Cityscapes, 0.6 OCRNet; the
number after the learning rate in a config name). The warm-up (weight 0 for the first 5000
iterations) is the framework's: it sets ``CACLoss.loss_weight``.
"""

from __future__ import annotations

import numbers
from typing import Callable, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .infonce import l2_normalize
from .sampling import _check_count
from .settings import _check_real

__all__ = [
    "ANCHOR_PICKINGS",
    "AnchorSelection",
    "CACLoss",
    "CACProjectionHead",
    "CACWeightBranch",
    "CLASS_REDUCTIONS",
    "HARD_PIXELS",
    "POSITIVE_NORMALIZERS",
    "reduce_classes",
    "select_anchors",
    "weighted_contrast",
]

# "sorted": hard pixels with the HIGHEST, easy pixels with the LOWEST true-class probability
# (every official config); "random": a uniform subset without replacement (the class default).
ANCHOR_PICKINGS = ("sorted", "random")
# "missed": hard = {label c, predicted other} (official fp=False); "false_positive": hard =
# {labelled other, predicted c} (official fp=True, with ignored pixels left out, see below).
HARD_PIXELS = ("missed", "false_positive")
# "official": mean over class ids 0..max(y) with 0 for absent ids (torch_scatter.scatter_mean
# then .mean()); "present": mean over the classes present; "anchor": mean over anchors.
CLASS_REDUCTIONS = ("official", "present", "anchor")
# "count": divide the weighted positive sum by the unweighted positive count (official);
# "weight": divide by the sum of the positive pair weights (a weighted mean).
POSITIVE_NORMALIZERS = ("count", "weight")

# The official epsilon in log(sum + eps) and in the positive count; part of the loss's value.
_EPS = 1e-16


def _check_choice(name: str, value, choices: tuple) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _check_one_device(*tensors: torch.Tensor) -> None:
    devices = {t.device for t in tensors}
    if len(devices) != 1:
        raise ValueError(f"inputs must be on one device, got {sorted(map(str, devices))}")


class AnchorSelection(NamedTuple):
    """The anchors picked by :func:`select_anchors`, in the official order: by group, then
    by class id, hard pixels before easy ones, each in picking order.

    Attributes:
        group: int64 ``[N]`` row of the input (image, or RoI) of each anchor.
        pixel: int64 ``[N]`` flat pixel index in that row.
        label: int64 ``[N]`` ground-truth label of the anchor.
        cls: int64 ``[N]`` the class whose hard/easy pool the anchor was picked from (= label
            except for ``hard_pixels="false_positive"`` hard anchors, picked for the predicted
            class).
    """

    group: torch.Tensor
    pixel: torch.Tensor
    label: torch.Tensor
    cls: torch.Tensor


def select_anchors(
    labels: torch.Tensor,
    class_prob: torch.Tensor,
    pred: torch.Tensor,
    num_classes: int,
    *,
    max_sample: int,
    threshold: int,
    budget: str = "total",
    anchor_picking: str = "sorted",
    hard_pixels: str = "missed",
    ignore_index: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
) -> AnchorSelection:
    """CAC's "confidence-aware marginal" anchor sampling (official ``_hard_sample_mining``),
    vectorised: one stable sort over all pixels instead of a loop over images and classes.

    Rule (official code, cac_loss.py:L38-119):

    - Classes: per group (image), the labels other than ``ignore_index`` with MORE than
      ``threshold`` pixels. T = number of such (group, class) pairs.
    - Budget: ``n_view = min(max_sample // T, threshold)`` per (group, class); T counted over
      all groups (``budget="total"``, the official per-GPU budget) or per group
      (``budget="group"``, the RoI form's per-RoI budget).
    - Pools of class c: hard = {label c, predicted not c} (``hard_pixels="missed"``) or
      {label not c and not ignored, predicted c} (``"false_positive"``; the official fp=True
      also takes ignored pixels, whose label 255 then fails its confidence gather);
      easy = {label c, predicted c}.
    - Split with nh, ne pool sizes: both >= n_view/2 -> n_view//2 hard and the rest easy; only
      hard large -> all ne easy, n_view - ne hard; only easy large -> all nh hard, n_view - nh
      easy; otherwise all of both. Counts are capped at the pool sizes (the official slices).
    - Picking (``anchor_picking="sorted"``): hard pixels with the HIGHEST probability of c,
      easy pixels with the LOWEST (both near the decision boundary). Ties go to the lower
      pixel index (a stable sort; the official argsort leaves tie order unspecified).
      ``"random"``: a uniform subset without replacement (official ``torch.randperm``), drawn
      with ``generator``.

    Args:
        labels: int64 ``[G, P]`` labels per group (image or RoI) and flat pixel.
        class_prob: floating ``[G, P, K]`` class probabilities used for picking (segmentation
            softmax; only read when ``anchor_picking="sorted"``).
        pred: int64 ``[G, P]`` predicted class (argmax of the segmentation logits).
        num_classes: K; labels must be in ``[0, K)`` or equal ``ignore_index``.
        max_sample: anchors per call (official 1024 per GPU), >= 1.
        threshold: minimum class size (exclusive) and per-(group, class) cap (official 100).
        budget, anchor_picking, hard_pixels: see above.
        ignore_index: label to skip (official 255), or None.
        generator: optional ``torch.Generator`` on the labels' device, for random picking.

    Returns:
        :class:`AnchorSelection`, N = 0 when no class qualifies or ``n_view`` is 0 (T >
        ``max_sample``, where the official code fails on an empty concatenation).

    Raises:
        ValueError: a label out of range, or a bad option.
    """
    _check_choice("budget", budget, ("total", "group"))
    _check_choice("anchor_picking", anchor_picking, ANCHOR_PICKINGS)
    _check_choice("hard_pixels", hard_pixels, HARD_PIXELS)
    g_count, p_count = labels.shape
    k = num_classes
    device = labels.device
    if ignore_index is None:
        valid = torch.ones_like(labels, dtype=torch.bool)
    else:
        valid = labels != ignore_index
    bad = valid & ((labels < 0) | (labels >= k))
    if bool(bad.any()):
        value = int(labels[bad][0])
        raise ValueError(f"labels must lie in [0, {k}) or equal ignore_index={ignore_index}, "
                         f"found {value}")
    safe_label = torch.where(valid, labels, torch.zeros_like(labels))
    group = torch.arange(g_count, device=device).unsqueeze(1).expand(g_count, p_count)
    class_size = torch.zeros(g_count * k, dtype=torch.int64, device=device).index_add_(
        0, (group * k + safe_label)[valid], torch.ones_like(labels[valid]))
    present = class_size > threshold  # [G*K]
    if budget == "total":
        t = present.sum().expand(g_count)
    else:
        t = present.view(g_count, k).sum(1)
    n_view = torch.clamp(torch.div(max_sample, t.clamp_min(1), rounding_mode="floor"),
                         max=threshold)  # [G]

    # Every pixel sits in at most one pool: easy of its label, or hard of one class.
    easy = valid & (pred == labels)
    if hard_pixels == "missed":
        hard = valid & (pred != labels)
        cls = safe_label
    else:
        hard = valid & (pred != labels)
        cls = torch.where(hard, pred, safe_label)
    cls_key = group * k + cls
    in_pool = (easy | hard) & present[cls_key]
    pool = cls_key * 2 + (~hard).long()  # hard pool before easy pool of the same class
    num_pools = g_count * k * 2
    pool = torch.where(in_pool, pool, torch.full_like(pool, num_pools))  # sentinel: out
    pool_size = torch.bincount(pool.flatten(), minlength=num_pools + 1)[:num_pools]
    nh, ne = pool_size.view(g_count * k, 2).unbind(1)

    nv = n_view.repeat_interleave(k)  # [G*K]
    half = nv.to(torch.float64) / 2
    hard_big, easy_big = nh >= half, ne >= half
    both = hard_big & easy_big
    hard_keep = torch.where(both, nv // 2, torch.where(hard_big, nv - ne, nh))
    easy_keep = torch.where(both, nv - nv // 2, torch.where(hard_big, ne,
                                                            torch.where(easy_big, nv - nh, ne)))
    keep = torch.stack([torch.minimum(hard_keep, nh), torch.minimum(easy_keep, ne)], 1)
    keep = torch.cat([keep.clamp_min(0).flatten(), keep.new_zeros(1)])  # [num_pools + 1]

    flat_pool = pool.flatten()
    if anchor_picking == "sorted":
        p_c = class_prob.reshape(g_count * p_count, k).gather(
            1, cls.reshape(-1, 1)).squeeze(1).detach()
        score = torch.where(hard.flatten(), -p_c, p_c)  # hard: descending, easy: ascending
    else:
        score = torch.rand(flat_pool.shape, generator=generator, device=device)
    order = torch.sort(score, stable=True).indices
    order = order[torch.sort(flat_pool[order], stable=True).indices]
    sorted_pool = flat_pool[order]
    start = torch.cumsum(torch.bincount(flat_pool, minlength=num_pools + 1), 0)
    start = torch.cat([start.new_zeros(1), start[:-1]])
    rank = torch.arange(order.numel(), device=device) - start[sorted_pool]
    chosen = order[rank < keep[sorted_pool]]
    flat_labels, flat_cls = labels.flatten(), cls.flatten()
    return AnchorSelection(torch.div(chosen, p_count, rounding_mode="floor"),
                           chosen % p_count, flat_labels[chosen], flat_cls[chosen])


def weighted_contrast(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    confidences: torch.Tensor,
    valid: torch.Tensor,
    *,
    temperature: float,
    base_temperature: float,
    positive_normalizer: str = "count",
    detach_keys: bool = False,
) -> torch.Tensor:
    """CAC's pair-weighted supervised contrast per anchor (official ``_contrastive`` up to its
    reduction, cac_loss.py:L121-149), batched over Q independent problems.

    For anchors i, j of one problem, labels y, unit embeddings f, confidences c:

    - pair weight ``W_ij = ((1 - c_i[y_j]) + (1 - c_j[y_i])) / 2``, ``W_ii = 0``;
    - ``s_ij = f_i . f_j / temperature`` minus the detached row max over j;
    - ``log p_ij = s_ij - log(sum_{k != i} W_ik exp(s_ik) + 1e-16)`` (all other anchors,
      positives and negatives, weighted);
    - ``loss_i = -(temperature / base_temperature) * sum_j W_ij pos_ij log p_ij / n_i`` with
      ``pos_ij = [y_i = y_j, i != j]`` and ``n_i = sum_j pos_ij + 1e-16`` (official,
      ``positive_normalizer="count"``: weighted numerator, unweighted count) or
      ``sum_j W_ij pos_ij + 1e-16`` (``"weight"``, a weighted mean).

    Computed in float32 (half inputs are cast, like the official ``force_fp32``) with autocast
    off.

    Args:
        embeddings: floating ``[Q, M, D]`` anchor embeddings, L2-normalised by the caller.
        labels: int64 ``[Q, M]`` anchor labels in ``[0, K)`` (any value where not valid).
        confidences: floating ``[Q, M, K]`` per-anchor class confidences (weight branch softmax).
        valid: bool ``[Q, M]``; padding entries (False) take no part.
        temperature, base_temperature: tau and tau_base (official 0.1 and 0.07).
        positive_normalizer: ``"count"`` (official) or ``"weight"``.
        detach_keys: official ``detach``: the keys f_j carry no gradient (configs: False).

    Returns:
        float32 ``[Q, M]`` per-anchor loss, 0 at padding.
    """
    q, m, _ = embeddings.shape
    with torch.autocast(device_type=embeddings.device.type, enabled=False):
        f = embeddings.float()
        conf = confidences.float()
        safe = torch.where(valid, labels, torch.zeros_like(labels))
        # one_minus[q, i, j] = 1 - c_i[y_j]
        one_minus = torch.gather(1 - conf, 2, safe.unsqueeze(1).expand(q, m, m))
        weight = (one_minus + one_minus.transpose(1, 2)) / 2
        eye = torch.eye(m, dtype=torch.bool, device=f.device)
        pair = valid.unsqueeze(2) & valid.unsqueeze(1) & ~eye
        weight = weight * pair
        positive = (safe.unsqueeze(2) == safe.unsqueeze(1)) & pair
        keys = f.detach() if detach_keys else f
        logits = torch.bmm(f, keys.transpose(1, 2)) / temperature
        row_max = logits.masked_fill(~valid.unsqueeze(1), float("-inf")).amax(2, keepdim=True)
        row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
        logits = logits - row_max.detach()
        log_prob = logits - torch.log((torch.exp(logits) * weight).sum(2, keepdim=True) + _EPS)
        weighted_pos = weight * positive
        numerator = (weighted_pos * log_prob).sum(2)
        if positive_normalizer == "count":
            denominator = positive.sum(2).float() + _EPS
        else:
            denominator = weighted_pos.sum(2) + _EPS
        loss = -(temperature / base_temperature) * numerator / denominator
    return torch.where(valid, loss, torch.zeros_like(loss))


def reduce_classes(
    anchor_loss: torch.Tensor,
    labels: torch.Tensor,
    valid: torch.Tensor,
    num_classes: int,
    class_reduction: str = "official",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reduce per-anchor losses to one value per problem (official cac_loss.py:L150-151).

    - ``"official"``: per class id 0..max(y) the mean over its anchors, 0 for an id with no
      anchor, then the plain mean over those max(y)+1 entries (``torch_scatter.scatter_mean``
      then ``.mean()``): absent ids below max(y) dilute the loss.
    - ``"present"``: the mean of the per-class means over the classes present.
    - ``"anchor"``: the mean over anchors.

    Args:
        anchor_loss: floating ``[Q, M]``; labels: int64 ``[Q, M]`` in ``[0, K)`` where valid;
        valid: bool ``[Q, M]``; num_classes: K.

    Returns:
        (``[Q]`` loss, 0 for a problem without anchors; ``[Q]`` bool, problems with anchors).
    """
    q, m = anchor_loss.shape
    k = num_classes
    safe = torch.where(valid, labels, torch.zeros_like(labels))
    index = (torch.arange(q, device=labels.device).unsqueeze(1) * k + safe)[valid]
    values = anchor_loss[valid]
    sums = anchor_loss.new_zeros(q * k).index_add(0, index, values).view(q, k)
    counts = anchor_loss.new_zeros(q * k).index_add(0, index, torch.ones_like(values)).view(q, k)
    has_anchors = valid.any(1)
    if class_reduction == "anchor":
        total, divisor = sums.sum(1), counts.sum(1)
    else:
        class_mean = sums / counts.clamp_min(1)
        total = class_mean.sum(1)
        if class_reduction == "official":
            top = torch.full((q,), -1, dtype=torch.int64, device=labels.device)
            top = top.scatter_reduce(0, torch.arange(q, device=labels.device).repeat_interleave(m)[
                valid.flatten()], labels[valid], "amax")
            divisor = (top + 1).to(total.dtype)
        else:
            divisor = (counts > 0).sum(1).to(total.dtype)
    return total / divisor.clamp_min(1), has_anchors


def _zero_like_inputs(*tensors: torch.Tensor, module: Optional[nn.Module] = None) -> torch.Tensor:
    # An exact 0 that still depends on every input and parameter, so autograd and DDP see them.
    zero = sum(t.float().sum() * 0.0 for t in tensors if t.is_floating_point())
    if module is not None:
        for p in module.parameters():
            zero = zero + p.float().sum() * 0.0
    return zero


def _check_float(name: str, t, shape_hint: str) -> None:
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        kind = t.dtype if isinstance(t, torch.Tensor) else type(t).__name__
        raise TypeError(f"{name} must be a floating torch.Tensor {shape_hint}, got {kind}")


class CACLoss(nn.Module):
    """CAC loss for semantic segmentation, ``loss_weight x`` the reduced pair-weighted
    supervised contrast over sampled anchors (official ``CACLoss``).

    Per call: resize the labels to the embeddings' size by nearest neighbour; softmax the
    segmentation logits (picking probabilities, prediction = argmax) and the weight branch's
    logits (pair confidences); pick at most ``max_sample`` anchors over the whole batch, at most
    ``threshold`` per (image, class), with :func:`select_anchors`; contrast them all with
    each other (one problem per call, across images) with :func:`weighted_contrast`; reduce
    with :func:`reduce_classes`; multiply by ``loss_weight``.

    Options (default = official, alternative beside it):
        anchor_picking: ``"sorted"`` (the configs, and the paper's "confidence-aware marginal
            anchor sampling") / ``"random"`` (the official class default).
        hard_pixels: ``"missed"`` (official fp=False) / ``"false_positive"`` (fp=True).
        class_reduction: ``"official"`` (absent ids dilute) / ``"present"`` / ``"anchor"``.
        positive_normalizer: ``"count"`` (official) / ``"weight"``.
        detach_keys: False (configs) / True (official ``detach``).
        Scaling by ``temperature / base_temperature`` is official; pass
        ``base_temperature=temperature`` to drop it.

    The weight confidences keep their gradient (official: ``weight_logit`` is not detached, so
    CAC also trains the weight branch, whose INPUT is detached: :class:`CACWeightBranch`).
    No call reads the warm-up: the official hook sets ``loss_weight`` to 0 for the first 5000
    iterations; a framework sets the attribute ``loss_weight``.

    Args:
        loss_weight: lambda, finite (0 still computes the loss, like the warm-up).
        temperature: tau > 0; base_temperature: tau_base > 0.
        max_sample: anchors per call (per GPU), >= 1; threshold: >= 1, see
            :func:`select_anchors`.
        ignore_index: label ignored (official 255), or None.

    Raises:
        TypeError / ValueError: a bad argument (one line, naming it).
    """

    def __init__(
        self,
        loss_weight: float = 0.1,
        temperature: float = 0.1,
        base_temperature: float = 0.07,
        max_sample: int = 1024,
        threshold: int = 100,
        ignore_index: Optional[int] = 255,
        *,
        anchor_picking: str = "sorted",
        hard_pixels: str = "missed",
        class_reduction: str = "official",
        positive_normalizer: str = "count",
        detach_keys: bool = False,
    ) -> None:
        super().__init__()
        self.loss_weight = _check_real("loss_weight", loss_weight, positive=False)
        self.temperature = _check_real("temperature", temperature, positive=True)
        self.base_temperature = _check_real("base_temperature", base_temperature, positive=True)
        self.max_sample = _check_count("max_sample", max_sample)
        self.threshold = _check_count("threshold", threshold)
        if ignore_index is not None and (isinstance(ignore_index, bool)
                                         or not isinstance(ignore_index, numbers.Integral)):
            raise TypeError("ignore_index must be an int or None, got "
                            f"{type(ignore_index).__name__}")
        self.ignore_index = ignore_index
        self.anchor_picking = _check_choice("anchor_picking", anchor_picking, ANCHOR_PICKINGS)
        self.hard_pixels = _check_choice("hard_pixels", hard_pixels, HARD_PIXELS)
        self.class_reduction = _check_choice("class_reduction", class_reduction, CLASS_REDUCTIONS)
        self.positive_normalizer = _check_choice("positive_normalizer", positive_normalizer,
                                                 POSITIVE_NORMALIZERS)
        if not isinstance(detach_keys, bool):
            raise TypeError(f"detach_keys must be a bool, got {type(detach_keys).__name__}")
        self.detach_keys = detach_keys
        self.last_num_anchors: int = 0

    def extra_repr(self) -> str:
        return (f"loss_weight={self.loss_weight}, temperature={self.temperature}, "
                f"base_temperature={self.base_temperature}, max_sample={self.max_sample}, "
                f"threshold={self.threshold}, ignore_index={self.ignore_index}, "
                f"anchor_picking={self.anchor_picking!r}, hard_pixels={self.hard_pixels!r}, "
                f"class_reduction={self.class_reduction!r}, "
                f"positive_normalizer={self.positive_normalizer!r}, detach_keys={self.detach_keys}")

    def _check_inputs(self, embeddings, labels, seg_logits, weight_logits) -> None:
        _check_float("embeddings", embeddings, "[B, D, h, w]")
        _check_float("seg_logits", seg_logits, "[B, K, h, w]")
        _check_float("weight_logits", weight_logits, "[B, K, h, w]")
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64:
            kind = labels.dtype if isinstance(labels, torch.Tensor) else type(labels).__name__
            raise TypeError(f"labels must be an int64 torch.Tensor [B, H, W], got {kind}")
        if embeddings.dim() != 4 or seg_logits.dim() != 4 or weight_logits.dim() != 4 \
                or labels.dim() != 3:
            raise ValueError(
                "expected embeddings [B, D, h, w], labels [B, H, W], seg_logits and "
                f"weight_logits [B, K, h, w], got {tuple(embeddings.shape)}, "
                f"{tuple(labels.shape)}, {tuple(seg_logits.shape)}, {tuple(weight_logits.shape)}")
        b, _, h, w = embeddings.shape
        if seg_logits.shape != weight_logits.shape or seg_logits.shape[0] != b \
                or seg_logits.shape[2:] != (h, w) or labels.shape[0] != b:
            raise ValueError(
                f"embeddings {tuple(embeddings.shape)}, labels {tuple(labels.shape)}, seg_logits "
                f"{tuple(seg_logits.shape)} and weight_logits {tuple(weight_logits.shape)} "
                "disagree in B, K or (h, w)")
        _check_one_device(embeddings, labels, seg_logits, weight_logits)

    def forward(
        self,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        seg_logits: torch.Tensor,
        weight_logits: torch.Tensor,
        generator: Optional[torch.Generator] = None,
    ) -> torch.Tensor:
        """The CAC loss of one GPU's batch.

        Args:
            embeddings: floating ``[B, D, h, w]`` projected features (:class:`CACProjectionHead`
                output; L2-normalised over D here).
            labels: int64 ``[B, H, W]`` ground truth, values in ``[0, K)`` or ``ignore_index``;
                resized to ``(h, w)`` by nearest neighbour when ``(H, W) != (h, w)``.
            seg_logits: floating ``[B, K, h, w]`` segmentation logits at the embeddings'
                resolution (hard/easy pools and picking).
            weight_logits: floating ``[B, K, h, w]`` weight branch logits (pair weights).
            generator: optional ``torch.Generator`` for ``anchor_picking="random"``.

        Returns:
            0-dim float32 tensor; exactly 0 (with a ``grad_fn``) when no (image, class) has
            more than ``threshold`` pixels.

        Raises:
            TypeError: a non-floating input or non-int64 labels.
            ValueError: wrong ranks, disagreeing shapes or devices, or a label out of range.
        """
        self._check_inputs(embeddings, labels, seg_logits, weight_logits)
        b, d, h, w = embeddings.shape
        k = seg_logits.shape[1]
        if labels.shape[1:] != (h, w):
            labels = F.interpolate(labels.unsqueeze(1).float(), size=(h, w),
                                   mode="nearest").squeeze(1).long()
        flat_labels = labels.reshape(b, h * w)
        seg = seg_logits.detach().float().reshape(b, k, h * w).transpose(1, 2)  # [B, P, K]
        picked = select_anchors(
            flat_labels, torch.softmax(seg, 2), seg.argmax(2), k, max_sample=self.max_sample,
            threshold=self.threshold, budget="total", anchor_picking=self.anchor_picking,
            hard_pixels=self.hard_pixels, ignore_index=self.ignore_index, generator=generator)
        n = picked.pixel.numel()
        self.last_num_anchors = n
        if n == 0:
            return _zero_like_inputs(embeddings, seg_logits, weight_logits) * self.loss_weight
        feats = embeddings.reshape(b, d, h * w)[picked.group, :, picked.pixel]  # [N, D]
        conf = weight_logits.reshape(b, k, h * w)[picked.group, :, picked.pixel]  # [N, K]
        conf = torch.softmax(conf.float(), 1)
        anchor_loss = weighted_contrast(
            l2_normalize(feats.float()).unsqueeze(0), picked.label.unsqueeze(0),
            conf.unsqueeze(0), torch.ones(1, n, dtype=torch.bool, device=feats.device),
            temperature=self.temperature, base_temperature=self.base_temperature,
            positive_normalizer=self.positive_normalizer, detach_keys=self.detach_keys)
        loss, _ = reduce_classes(anchor_loss, picked.label.unsqueeze(0),
                                 torch.ones_like(anchor_loss, dtype=torch.bool), k,
                                 self.class_reduction)
        return loss[0] * self.loss_weight


class CACProjectionHead(nn.Module):
    """CAC's projection head (official ``CACFCNHead.proj``, cac_fcn_head.py:L76-95):
    ``h = ReLU(norm(conv1x1(x)))`` (C -> D, no bias with a norm, like mmcv's ConvModule
    ``bias="auto"``), then ``z = h + conv1x1(h)`` (D -> D, bias, no norm, no activation).
    Applied to the head input, not detached, so CAC trains the backbone; the loss normalises z.

    Args:
        in_channels: C (HRNetV2-W48 concatenation: 720; Mask R-CNN mask head: 256).
        channels: D (official ``proj_channel`` 256).
        norm_layer: a callable ``channels -> nn.Module`` (official SyncBN; BatchNorm2d on one
            device), or None for no norm (the first conv then has a bias).

    Shapes: ``[B, C, H, W] -> [B, D, H, W]``, same dtype.
    """

    def __init__(self, in_channels: int, channels: int = 256,
                 norm_layer: Optional[Callable[[int], nn.Module]] = nn.BatchNorm2d) -> None:
        super().__init__()
        c, d = _check_count("in_channels", in_channels), _check_count("channels", channels)
        self.conv = nn.Conv2d(c, d, 1, bias=norm_layer is None)
        self.norm = norm_layer(d) if norm_layer is not None else nn.Identity()
        self.residual = nn.Conv2d(d, d, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.norm(self.conv(x)))
        return h + self.residual(h)


class CACWeightBranch(nn.Module):
    """CAC's weight branch (official ``CACFCNHead.weight_branch``, cac_fcn_head.py:L97-115,
    L129): ``conv_kxk(x.detach())`` C -> ``channels`` + norm + ReLU, then a 1x1 conv to K
    logits. The input is detached (the paper's stop-gradient): the branch's own CE, times
    ``loss_factor`` (official ``weight`` 1.5, the last number of a config name; the framework
    computes it with the main head's class weights and OHEM mask), and CAC through the pair
    weights train it; neither reaches the backbone. Not run at test time.

    Args:
        in_channels: C; num_classes: K; channels: hidden width (official ``channels``, = C
            for the HRNet configs; None = C); kernel_size: official 1 in the HRNet configs;
        norm_layer: as :class:`CACProjectionHead`; loss_factor: the CE factor, finite.

    Shapes: ``[B, C, H, W] -> [B, K, H, W]``.
    """

    def __init__(self, in_channels: int, num_classes: int, channels: Optional[int] = None,
                 kernel_size: int = 1,
                 norm_layer: Optional[Callable[[int], nn.Module]] = nn.BatchNorm2d,
                 loss_factor: float = 1.5) -> None:
        super().__init__()
        c = _check_count("in_channels", in_channels)
        hidden = c if channels is None else _check_count("channels", channels)
        ks = _check_count("kernel_size", kernel_size)
        self.loss_factor = _check_real("loss_factor", loss_factor, positive=False)
        self.conv = nn.Conv2d(c, hidden, ks, padding=ks // 2, bias=norm_layer is None)
        self.norm = norm_layer(hidden) if norm_layer is not None else nn.Identity()
        self.classifier = nn.Conv2d(hidden, _check_count("num_classes", num_classes), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.relu(self.norm(self.conv(x.detach()))))
