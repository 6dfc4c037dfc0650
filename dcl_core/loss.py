"""The dense contrastive loss as an ``nn.Module`` (paper Sec. 4.2-4.3, Eq. 3-6)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .infonce import info_nce
from .roi_inputs import check_roi_inputs, exact_zero
from .sampling import _check_count, sample_pixels
from .settings import ROI_SELECTIONS, DCLSettings

__all__ = ["DenseContrastiveLoss", "ROI_SELECTIONS", "ROI_REDUCTIONS"]

ROI_REDUCTIONS = ("mean", "sum")
_DEFAULT = DCLSettings()


class DenseContrastiveLoss(nn.Module):
    """Dense contrastive loss on RoI features, lambda x L_contrast (paper Eq. 3-6).

    Per call: cap the RoIs at ``max_rois``; per RoI sample anchors/positives on the ground-truth
    mask and negatives off it (:func:`dcl_core.sample_pixels`); gather those pixels' features;
    project them (learnable similarity, Eq. 5); InfoNCE per RoI (:func:`dcl_core.info_nce`);
    reduce over the valid RoIs; multiply by ``loss_weight``.

    Defaults follow the authors' code and are :class:`dcl_core.DCLSettings`'s (lambda 1.2,
    K = 32, tau = 0.07, projection on, the FIRST 100 RoIs), with the mean over the K x K pairs
    of a RoI and the mean over valid RoIs. The paper's sums (Eq. 3 over pairs, Eq. 4 over
    RoIs) are available as ``pair_reduction="sum"`` and ``roi_reduction="sum"``. Adapters build
    the module with :meth:`from_settings`.

    RoI cap: like the authors, who cap the foreground RoIs of the batch, the cap is applied to
    the RoIs passed in BEFORE the validity test, so fewer than ``max_rois`` RoIs may count.
    Callers pass foreground RoIs only (those the mask head is trained on).

    Projection: 1x1 conv C->C, ReLU, 1x1 conv C->C (``projection.0`` and ``projection.2`` in
    the state_dict), followed by L2 normalisation over C inside :func:`info_nce`. It serves the
    loss only, so it adds no inference cost. Being pointwise, it is applied to the 3K gathered
    pixel vectors of each RoI instead of the whole map (the authors project the whole map):
    the loss is identical and the work ~HW/3K (about 8x at 28x28, K = 32) smaller.

    The forward pass reads nothing back to the host, so it does not synchronise a CUDA device.

    Args:
        channels: C, channels of the RoI features (Mask R-CNN: 256).
        num_samples: K, anchors = positives = negatives per RoI.
        temperature: tau > 0.
        loss_weight: lambda (the authors use 1.2 Cityscapes/ImageNet, 1.6 Cityscapes/COCO,
            0.1 COCO).
        with_projection: use the learnable similarity (Eq. 5); False = plain cosine similarity.
        max_rois: at most this many RoIs take part per call (None = no cap).
        roi_selection: ``"first"`` (authors) or ``"random"`` (uniform subset, without
            replacement, drawn with the forward's ``generator``) when the cap applies.
        pair_reduction: ``"mean"`` (authors) or ``"sum"`` (Eq. 3) over the A x P pairs of a RoI.
        roi_reduction: ``"mean"`` (authors) or ``"sum"`` (Eq. 4) over the valid RoIs.
        num_anchors, num_positives, num_negatives: optional A, P, N overriding K (paper
            supplementary); validity is then ``max(A, P) < |fg| and N < H*W - |fg|``.

    Attributes:
        last_num_rois: int, RoIs considered in the last call, after the cap (before validity).
        last_num_valid: int64 0-dim tensor on the features' device, valid RoIs among those
            (kept as a tensor to avoid a device sync; call ``int()`` when logging).

    Raises:
        TypeError / ValueError: from the constructor, for a bad count, temperature, weight or
            option name (the message names the argument).
    """

    def __init__(
        self,
        channels: int,
        num_samples: int = _DEFAULT.num_samples,
        temperature: float = _DEFAULT.temperature,
        loss_weight: float = _DEFAULT.loss_weight,
        with_projection: bool = _DEFAULT.with_projection,
        max_rois: Optional[int] = _DEFAULT.max_rois,
        *,
        roi_selection: str = _DEFAULT.roi_selection,
        pair_reduction: str = "mean",
        roi_reduction: str = "mean",
        num_anchors: Optional[int] = _DEFAULT.num_anchors,
        num_positives: Optional[int] = _DEFAULT.num_positives,
        num_negatives: Optional[int] = _DEFAULT.num_negatives,
    ) -> None:
        super().__init__()
        self.channels = _check_count("channels", channels)
        # The settings check every value (one home for the rules); the module keeps its own
        # attributes, with |A|, |P|, |N| resolved to K.
        settings = DCLSettings(
            loss_weight=loss_weight, temperature=temperature, num_samples=num_samples,
            with_projection=with_projection, max_rois=max_rois, roi_selection=roi_selection,
            num_anchors=num_anchors, num_positives=num_positives, num_negatives=num_negatives)
        if pair_reduction not in ("mean", "sum"):
            raise ValueError(f"pair_reduction must be 'mean' or 'sum', got {pair_reduction!r}")
        if roi_reduction not in ROI_REDUCTIONS:
            raise ValueError(f"roi_reduction must be one of {ROI_REDUCTIONS}, got {roi_reduction!r}")
        self.num_samples = settings.num_samples
        self.temperature = settings.temperature
        self.loss_weight = settings.loss_weight
        self.max_rois = settings.max_rois
        self.roi_selection = settings.roi_selection
        self.pair_reduction = pair_reduction
        self.roi_reduction = roi_reduction
        self.num_anchors, self.num_positives, self.num_negatives = settings.counts
        self.with_projection = settings.with_projection
        if self.with_projection:
            c = self.channels
            self.projection: Optional[nn.Sequential] = nn.Sequential(
                nn.Conv2d(c, c, kernel_size=1), nn.ReLU(), nn.Conv2d(c, c, kernel_size=1)
            )
        else:
            self.projection = None
        self.last_num_rois: int = 0
        self.last_num_valid: torch.Tensor = torch.zeros((), dtype=torch.int64)

    @classmethod
    def from_settings(cls, settings: DCLSettings, channels: int, **options) -> "DenseContrastiveLoss":
        """The module for ``channels``-channel RoI features with ``settings``.

        ``options``: the constructor's keyword-only reduction options (``pair_reduction``,
        ``roi_reduction``), which are no settings of the adapters.

        Raises:
            TypeError: ``settings`` is not a :class:`dcl_core.DCLSettings`.
        """
        if not isinstance(settings, DCLSettings):
            raise TypeError(f"settings must be DCLSettings, got {type(settings).__name__}")
        s = settings
        return cls(channels, s.num_samples, s.temperature, s.loss_weight, s.with_projection,
                   s.max_rois, roi_selection=s.roi_selection, num_anchors=s.num_anchors,
                   num_positives=s.num_positives, num_negatives=s.num_negatives, **options)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, num_anchors={self.num_anchors}, "
            f"num_positives={self.num_positives}, num_negatives={self.num_negatives}, "
            f"temperature={self.temperature}, loss_weight={self.loss_weight}, "
            f"max_rois={self.max_rois}, roi_selection={self.roi_selection!r}, "
            f"pair_reduction={self.pair_reduction!r}, roi_reduction={self.roi_reduction!r}"
        )

    def forward(
        self,
        features: torch.Tensor,
        gt_masks: torch.Tensor,
        mask_logits: Optional[torch.Tensor] = None,
        *,
        generator: Optional[torch.Generator] = None,
    ) -> torch.Tensor:
        """Compute ``loss_weight`` x (mean or sum) over valid RoIs of the per-RoI InfoNCE.

        Args:
            features: floating ``[R, C, H, W]`` RoI features (Mask R-CNN: the mask head's
                tensor entering its final 1x1 predictor, 256 x 28 x 28). R may be 0.
            gt_masks: bool ``[R, H, W]`` ground-truth masks of the matched instances, cropped
                and resized to each RoI at the feature resolution.
            mask_logits: optional floating ``[R, H, W]`` mask logits; checked and ignored (the
                forward contract every mask-head loss of the project shares,
                :func:`dcl_core.roi_inputs.check_roi_inputs`).
            generator: optional ``torch.Generator`` on the features' device; drives the RoI
                subset (``roi_selection="random"``) and the pixel draws, for reproducibility.

        Returns:
            0-dim tensor (float32 for half inputs, else the features' dtype; with the
            projection, the features are first cast to its dtype, so a float32 loss takes
            bfloat16 or float16 features). With no valid RoI (including R = 0) it is exactly
            0.0 and still has a ``grad_fn``.

        Raises:
            TypeError: features (or mask_logits) not floating, or gt_masks not bool.
            ValueError: shapes not ``[R, C, H, W]`` / ``[R, H, W]``, R/H/W mismatch,
                C != ``channels``, or the tensors (or ``generator``) on different devices.
        """
        check_roi_inputs(features, gt_masks, self.channels, mask_logits, generator)
        r = features.shape[0]
        if self.max_rois is not None and r > self.max_rois:
            if self.roi_selection == "first":
                features, gt_masks = features[: self.max_rois], gt_masks[: self.max_rois]
            else:
                # top-k of i.i.d. uniform keys = a uniform subset without replacement; unlike
                # randperm it is guaranteed to stay on the device on every torch version.
                keys = torch.rand(r, generator=generator, device=features.device)
                keep = torch.topk(keys, self.max_rois).indices
                features, gt_masks = features.index_select(0, keep), gt_masks.index_select(0, keep)
        r, c, h, w = features.shape
        self.last_num_rois = r
        if r == 0:
            self.last_num_valid = torch.zeros((), dtype=torch.int64, device=features.device)
            return exact_zero(features, self) * self.loss_weight

        sampled = sample_pixels(
            gt_masks,
            self.num_samples,
            generator,
            num_anchors=self.num_anchors,
            num_positives=self.num_positives,
            num_negatives=self.num_negatives,
        )
        index = torch.cat([sampled.anchor, sampled.positive, sampled.negative], dim=1)
        # expand() is a view: no [R, C, S] index tensor is materialised.
        picked = torch.gather(
            features.reshape(r, c, h * w), 2, index.unsqueeze(1).expand(r, c, index.shape[1])
        )  # [R, C, S]
        if self.projection is not None:
            # The 1x1 convs see the S picked pixels as an S x 1 image: pointwise, so equal to
            # projecting the full map and picking afterwards. Cast to the projection's dtype,
            # so bfloat16/float16 features (a low-precision backbone) meet a float32 loss.
            weight = self.projection[0].weight
            picked = self.projection(picked.unsqueeze(-1).to(weight.dtype)).squeeze(-1)
        embeddings = picked.transpose(1, 2)  # [R, S, C]
        anchor, positive, negative = embeddings.split(
            [self.num_anchors, self.num_positives, self.num_negatives], dim=1
        )
        per_roi = info_nce(anchor, positive, negative, self.temperature, self.pair_reduction)
        # where(), not a product, so a non-finite loss of an invalid RoI cannot leak in.
        per_roi = torch.where(sampled.valid, per_roi, per_roi.new_zeros(()))
        num_valid = sampled.valid.sum()
        self.last_num_valid = num_valid.detach()
        total = per_roi.sum()
        if self.roi_reduction == "mean":
            # clamp: no valid RoI gives 0 / 1 = exactly 0, without a data-dependent branch.
            total = total / num_valid.clamp_min(1).to(total.dtype)
        return total * self.loss_weight
