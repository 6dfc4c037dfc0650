"""CAC on Mask R-CNN's mask head: a binary (fg/bg) confidence-aware contrast over each RoI's
pixels, the third loss of the same-baseline table beside DCL and ContrastMask's (issue 17).

Mapping from the semantic-segmentation form (:mod:`dcl_core.cac`, official CVIU-CSU code):

============================  ==================================  ===========================
official (semantic)           here (mask head)                    why
============================  ==================================  ===========================
image of a GPU's batch        RoI                                 the mask head's unit
19 classes, ignore 255        bg = 0, fg = 1 (gt mask), no ignore the mask target
main head softmax P, argmax   sigmoid of the mask logit: P = [1-p, the mask head's own
                              p], predicted fg iff p > 0.5        prediction
weight branch softmax C       the same sigmoid, DETACHED          see below
>100 px per image-class,      > ``threshold`` (32) px per RoI-    28x28 = 784 px per RoI;
cap 100 per image-class       class, cap ``threshold``            32 = DCL's K
1024 anchors per GPU          ``max_anchors`` (64) per RoI, so    one contrast per RoI,
(one contrast across images)  n_view = min(64 // T_RoI, 32)       like DCL's per-RoI InfoNCE
scatter-mean over class ids   the same over {0, 1} per RoI, then  fg-only anchors: (0 + fg)/2
then mean                     the mean over RoIs with anchors     (the quirk, kept)
projection head 720 -> 256    :class:`CACProjectionHead` C -> 256 same module
============================  ==================================  ===========================

The weight branch: CAC trains a separate classifier on DETACHED features (CE x 1.5) so that
its confidences weight the pairs without the contrast pushing on the shared features through
them. The mask head's own logits already are a classifier of the RoI's pixels trained by its
BCE; using them, detached (``detach_confidence=True``, default), keeps that stop-gradient:
CAC reaches the features only through the projection, as in the official code. With
``detach_confidence=False`` the pair weights' gradient flows into the mask logits, and from
there into the shared mask-head features, which the official weight branch never does.

Only the RoI budget (``max_anchors``, ``threshold``), ``max_rois`` and ``detach_confidence``
are this project's choices; every other default is :class:`dcl_core.cac.CACLoss`'s (the
official code's), read from its signature, so each value has one home.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import ClassVar, Optional

import torch
from torch import nn

from .cac import (ANCHOR_PICKINGS, CACLoss, CACProjectionHead, CLASS_REDUCTIONS, HARD_PIXELS,
                  POSITIVE_NORMALIZERS, _check_choice, _zero_like_inputs,
                  reduce_classes, select_anchors, weighted_contrast)
from .infonce import l2_normalize
from .roi_inputs import check_roi_inputs
from .sampling import _check_count
from .settings import LossSettings, _check_real

__all__ = ["CACMaskLoss", "CACSettings", "PROJECTED_PIXELS"]

# "all": project the whole RoI map, so the projection's batch norm sees every pixel (the
# official head projects the whole feature map); "anchors": project the picked pixels only
# (batch statistics over the anchors; ~HW / anchors times less projection work).
PROJECTED_PIXELS = ("all", "anchors")

_OFFICIAL = {name: p.default for name, p in inspect.signature(CACLoss).parameters.items()}


@dataclass(frozen=True)
class CACSettings(LossSettings):
    """Settings of the CAC loss on the mask head (:class:`CACMaskLoss`), the loss ``"cac"`` of
    :data:`dcl_core.registry.LOSSES`.

    Attributes:
        loss_weight: lambda, finite; 0 builds no loss (the baseline). Default: the official
            class default 0.1 (the configs use 0.4 HRNet-Cityscapes, 0.6 OCRNet), which is
            also DCL's COCO lambda.
        temperature: tau > 0 (official 0.1); base_temperature: tau_base > 0 (official 0.07;
            the loss is scaled by tau / tau_base).
        max_anchors: anchors per RoI (official: 1024 per GPU), >= 1.
        threshold: a class (fg or bg) takes part in a RoI with MORE than this many pixels, and
            gives at most this many anchors (official: 100 per image-class), >= 1.
        max_rois: the first this many RoIs take part (None = all; DCL's cap, for the same
            comparison).
        projection_channels: D of :class:`CACProjectionHead` (official 256).
        projected_pixels: ``"all"`` (default, the official full-map projection) or
            ``"anchors"`` (:data:`PROJECTED_PIXELS`; the batch norm's statistics then come
            from the anchors only, and the projection costs ~HW / anchors times less).
        anchor_picking, hard_pixels, class_reduction, positive_normalizer, detach_keys: as
            :class:`dcl_core.cac.CACLoss` (official defaults, alternatives there).
        detach_confidence: detach the mask logits where they weight the pairs (default: the
            weight branch's stop-gradient, see the module docstring).

    Raises:
        TypeError / ValueError: a value of the wrong type or out of range, one line naming it.
    """

    name: ClassVar[str] = "cac"

    loss_weight: float = _OFFICIAL["loss_weight"]
    temperature: float = _OFFICIAL["temperature"]
    base_temperature: float = _OFFICIAL["base_temperature"]
    max_anchors: int = 64
    threshold: int = 32
    max_rois: Optional[int] = 100
    projection_channels: int = 256
    projected_pixels: str = "all"
    anchor_picking: str = _OFFICIAL["anchor_picking"]
    hard_pixels: str = _OFFICIAL["hard_pixels"]
    class_reduction: str = _OFFICIAL["class_reduction"]
    positive_normalizer: str = _OFFICIAL["positive_normalizer"]
    detach_confidence: bool = True
    detach_keys: bool = _OFFICIAL["detach_keys"]

    def __post_init__(self) -> None:
        checked = {
            "loss_weight": _check_real("loss_weight", self.loss_weight, positive=False),
            "temperature": _check_real("temperature", self.temperature, positive=True),
            "base_temperature": _check_real("base_temperature", self.base_temperature,
                                            positive=True),
            "max_anchors": _check_count("max_anchors", self.max_anchors),
            "threshold": _check_count("threshold", self.threshold),
            "max_rois": None if self.max_rois is None else _check_count("max_rois", self.max_rois),
            "projection_channels": _check_count("projection_channels", self.projection_channels),
        }
        for key, choices in (("projected_pixels", PROJECTED_PIXELS),
                             ("anchor_picking", ANCHOR_PICKINGS), ("hard_pixels", HARD_PIXELS),
                             ("class_reduction", CLASS_REDUCTIONS),
                             ("positive_normalizer", POSITIVE_NORMALIZERS)):
            _check_choice(key, getattr(self, key), choices)
        for key in ("detach_confidence", "detach_keys"):
            if not isinstance(getattr(self, key), bool):
                raise TypeError(f"{key} must be a bool, got {type(getattr(self, key)).__name__}")
        for key, value in checked.items():
            object.__setattr__(self, key, value)

    def variant_name(self) -> str:
        """The run folder's variant: ``cac_w0.1_t0.1``, then one ``_<key><value>`` per setting
        off its default (e.g. ``_max_anchors128``, ``_class_reductionpresent``,
        ``_detach_confidenceFalse``), in declaration order."""
        name = f"cac_w{self.loss_weight:g}_t{self.temperature:g}"
        default = type(self)().to_mapping()
        for key, value in self.to_mapping().items():
            if key in ("loss_weight", "temperature") or value == default[key]:
                continue
            text = "all" if value is None else f"{value:g}" if isinstance(value, float) else value
            name += f"_{key}{text}"
        return name


class CACMaskLoss(nn.Module):
    """CAC over each RoI's pixels on the mask head, ``loss_weight x`` the mean over RoIs (with
    anchors) of the per-RoI class-reduced confidence-weighted contrast; the mapping from the
    semantic form is in the module docstring.

    Per call: keep the first ``max_rois`` RoIs; project the features (:class:`CACProjectionHead`,
    on the whole map, so its batch norm sees every RoI pixel, as the official head does, or
    with ``projected_pixels="anchors"`` on the anchors only);
    label pixels fg/bg from ``gt_masks``; take p = sigmoid(mask_logits) as the class
    probability (picking) and the confidence (pair weights); pick anchors per RoI with
    :func:`dcl_core.cac.select_anchors` (``budget="group"``); contrast the anchors of each RoI
    with each other (:func:`dcl_core.cac.weighted_contrast`, batched over RoIs, padded);
    reduce per RoI (:func:`dcl_core.cac.reduce_classes`).

    Args:
        channels: C of the RoI features (Mask R-CNN: 256).
        settings: :class:`CACSettings` (None = defaults).

    Attributes:
        projection: the :class:`CACProjectionHead` (``projection.*`` in the state_dict); it
            serves the loss only, so it adds no inference cost.
        last_num_rois: int, RoIs after the cap in the last call; last_num_anchors: int, anchors;
        last_num_valid: int64 0-dim tensor on the features' device, the RoIs with an anchor (the
        ones averaged over), read by the adapters' monitors as DCL's.

    Raises:
        TypeError: ``settings`` is not a :class:`CACSettings`; ValueError / TypeError: bad
            ``channels``.
    """

    # Mask heads pass each RoI's gt-class mask logits to a loss that declares this.
    uses_mask_logits = True

    def __init__(self, channels: int, settings: Optional[CACSettings] = None) -> None:
        super().__init__()
        settings = CACSettings() if settings is None else settings
        if not isinstance(settings, CACSettings):
            raise TypeError(f"settings must be CACSettings, got {type(settings).__name__}")
        self.channels = _check_count("channels", channels)
        self.settings = settings
        self.loss_weight = settings.loss_weight
        self.projection = CACProjectionHead(self.channels, settings.projection_channels)
        self.last_num_rois: int = 0
        self.last_num_anchors: int = 0
        self.last_num_valid: torch.Tensor = torch.zeros((), dtype=torch.int64)

    @classmethod
    def from_settings(cls, settings: CACSettings, channels: int) -> "CACMaskLoss":
        """The module for ``channels``-channel RoI features with ``settings`` (the registry's
        constructor).

        Raises:
            TypeError: ``settings`` is not a :class:`CACSettings`.
        """
        return cls(channels, settings)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, " + ", ".join(
            f"{k}={v!r}" for k, v in self.settings.to_mapping().items())

    def _check_inputs(self, features, gt_masks, mask_logits) -> None:
        if mask_logits is None:
            raise ValueError("CAC needs mask_logits [R, H, W] (its class probabilities and "
                             "pair confidences); the adapter must pass the mask head's logits")
        check_roi_inputs(features, gt_masks, self.channels, mask_logits)

    def forward(
        self,
        features: torch.Tensor,
        gt_masks: torch.Tensor,
        mask_logits: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> torch.Tensor:
        """The CAC loss of the RoIs of one call.

        Args:
            features: floating ``[R, C, H, W]`` RoI features (Mask R-CNN: the tensor entering
                the mask predictor, 256 x 28 x 28); R may be 0.
            gt_masks: bool ``[R, H, W]`` ground-truth masks at the feature resolution.
            mask_logits: floating ``[R, H, W]`` mask logits of each RoI's ground-truth class
                (required; the argument is optional only to share the mask-head contract).
            generator: optional ``torch.Generator`` for ``anchor_picking="random"``.

        Returns:
            0-dim float32 tensor; exactly 0 with a ``grad_fn`` when fewer than 2 anchors are
            picked (no RoI has a class with more than ``threshold`` pixels, or R = 0).

        Raises:
            ValueError: ``mask_logits`` missing, wrong ranks, disagreeing shapes or devices,
                C != ``channels``.
            TypeError: non-floating features or logits, non-bool masks.
        """
        self._check_inputs(features, gt_masks, mask_logits)
        s = self.settings
        if s.max_rois is not None:
            features, gt_masks, mask_logits = (t[: s.max_rois]
                                               for t in (features, gt_masks, mask_logits))
        r, c, h, w = features.shape
        self.last_num_rois = r
        self.last_num_anchors = 0
        self.last_num_valid = torch.zeros((), dtype=torch.int64, device=features.device)
        if r == 0:
            return _zero_like_inputs(features, mask_logits, module=self) * self.loss_weight
        dtype = self.projection.conv.weight.dtype
        z = self.projection(features.to(dtype)) if s.projected_pixels == "all" else None
        labels = gt_masks.reshape(r, h * w).long()
        logit = mask_logits.reshape(r, h * w).float()
        fg = torch.sigmoid(logit)
        prob = torch.stack([1 - fg, fg], 2)  # [R, HW, 2]
        picked = select_anchors(
            labels, prob.detach(), (logit > 0).long(), 2, max_sample=s.max_anchors,
            threshold=s.threshold, budget="group", anchor_picking=s.anchor_picking,
            hard_pixels=s.hard_pixels, generator=generator)
        n = picked.pixel.numel()
        self.last_num_anchors = n
        self.last_num_valid = (torch.bincount(picked.group, minlength=r) > 0).sum()
        if n < 2:  # one anchor has no pair: its loss is exactly 0 (and batch norm needs 2)
            zero = _zero_like_inputs(features, mask_logits, module=self)
            return (zero if z is None else zero + z.sum() * 0.0) * self.loss_weight
        # Anchors come grouped by RoI: slot = rank within the RoI, M = the largest count.
        per_roi = torch.bincount(picked.group, minlength=r)
        start = torch.cumsum(per_roi, 0) - per_roi
        slot = torch.arange(n, device=features.device) - start[picked.group]
        m = int(per_roi.max())
        if z is None:
            # The N anchors as an N x 1 image: the 1x1 convs act per pixel, the norm over N.
            picked_features = features.reshape(r, c, h * w)[picked.group, :, picked.pixel]
            emb = self.projection(picked_features.to(dtype).T[None, :, :, None])[0, :, :, 0].T
        else:
            emb = z.reshape(r, z.shape[1], h * w)[picked.group, :, picked.pixel]
        emb = l2_normalize(emb.float())  # [N, D]
        d = emb.shape[1]
        conf = prob[picked.group, picked.pixel]  # [N, 2]
        if s.detach_confidence:
            conf = conf.detach()
        valid = torch.zeros(r, m, dtype=torch.bool, device=features.device)
        valid[picked.group, slot] = True
        padded_emb = emb.new_zeros(r, m, d).index_put((picked.group, slot), emb)
        padded_conf = conf.new_zeros(r, m, 2).index_put((picked.group, slot), conf)
        padded_label = labels.new_zeros(r, m).index_put((picked.group, slot), picked.label)
        anchor_loss = weighted_contrast(
            padded_emb, padded_label, padded_conf, valid, temperature=s.temperature,
            base_temperature=s.base_temperature, positive_normalizer=s.positive_normalizer,
            detach_keys=s.detach_keys)
        roi_loss, has_anchors = reduce_classes(anchor_loss, padded_label, valid, 2,
                                               s.class_reduction)
        total = roi_loss.sum() / has_anchors.sum().clamp_min(1).to(roi_loss.dtype)
        return total * self.loss_weight
