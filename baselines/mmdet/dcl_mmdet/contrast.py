"""Build the dense contrastive loss from an mmdet config field (``loss_contrast=dict(...)``)."""

from __future__ import annotations

from typing import Mapping, Optional

from dcl_core import DenseContrastiveLoss

__all__ = ["CONTRAST_DEFAULTS", "build_contrast_loss"]

# The paper's / authors' defaults (shared/reference/official-code.md); loss_weight is lambda.
CONTRAST_DEFAULTS = dict(
    loss_weight=1.0,
    num_samples=32,
    temperature=0.07,
    with_projection=True,
    max_rois=100,
    roi_selection="first",
    num_anchors=None,
    num_positives=None,
    num_negatives=None,
)


def build_contrast_loss(cfg: Optional[Mapping], channels: int) -> Optional[DenseContrastiveLoss]:
    """The loss module for ``channels``-channel RoI features, or None for the exact baseline.

    Args:
        cfg: None, or a mapping with any of the keys of :data:`CONTRAST_DEFAULTS` (missing keys
            take those defaults). ``loss_weight == 0`` means no loss (no module, so no
            projection parameters and the baseline's exact parameter set).
        channels: C of the features the loss will see.

    Returns:
        A :class:`dcl_core.DenseContrastiveLoss`, or None.

    Raises:
        ValueError: an unknown key (the message names it), or a bad value (from dcl_core).
        TypeError: a value of the wrong type (from dcl_core).
    """
    if cfg is None:
        return None
    unknown = sorted(set(cfg) - set(CONTRAST_DEFAULTS))
    if unknown:
        raise ValueError(f"loss_contrast: unknown key(s) {unknown}; known: {sorted(CONTRAST_DEFAULTS)}")
    args = {**CONTRAST_DEFAULTS, **dict(cfg)}
    if args["loss_weight"] == 0:
        return None
    weight = args.pop("loss_weight")
    return DenseContrastiveLoss(
        channels,
        num_samples=args.pop("num_samples"),
        temperature=args.pop("temperature"),
        loss_weight=weight,
        with_projection=args.pop("with_projection"),
        max_rois=args.pop("max_rois"),
        **args,
    )
