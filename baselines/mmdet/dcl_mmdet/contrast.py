"""The dense contrastive loss in mmdet configs: ``loss_contrast=dict(...)`` of the mask head.

This module alone knows how dcl_core's neutral loss settings (:class:`dcl_core.DCLSettings`)
are spelt in an mmdet config: the mask head's ``loss_contrast`` holds them under dcl_core's own
names, and the ``--loss`` option of ``train.py`` / ``predict.py`` is written there.
"""

from __future__ import annotations

from typing import Mapping, Optional

from torch import nn

from dcl_core import DCLSettings, build_loss

__all__ = ["apply_loss_settings", "build_contrast_loss"]

LOSS_KEY = "model.roi_head.mask_head.loss_contrast"


def build_contrast_loss(cfg: Optional[Mapping], channels: int, settings_class: type = DCLSettings,
                        key: str = "loss_contrast") -> Optional[nn.Module]:
    """The loss module for ``channels``-channel RoI features, or None for the exact baseline.

    Args:
        cfg: None, or a mapping with any of ``settings_class``' keys (missing keys take
            dcl_core's defaults). ``loss_weight == 0`` means no loss (no module, so no
            projection parameters and the baseline's exact parameter set).
        channels: C of the features the loss will see.
        settings_class: the loss's settings in dcl_core: :class:`dcl_core.DCLSettings`
            (a :class:`dcl_core.DenseContrastiveLoss`), or another registered loss's, e.g.
            :class:`dcl_core.ContrastMaskSettings` for ContrastMask's head.
        key: the config key the mapping sits under, for messages.

    Returns:
        The loss module of dcl_core's registry, or None.

    Raises:
        ValueError: an unknown key (the message names it), or a bad value; prefixed
            ``{key}:``.
        TypeError: a value of the wrong type.
    """
    if cfg is None:
        return None
    try:
        settings = settings_class.from_mapping(dict(cfg))
    except (TypeError, ValueError) as e:
        raise type(e)(f"{key}: {e}") from None
    return build_loss(settings, channels)


def apply_loss_settings(cfg, settings: Optional[DCLSettings]):
    """Write the ``--loss`` option's settings into the mask head's ``loss_contrast`` of ``cfg``
    (an mmengine ``Config``) and return ``cfg``; None (``--loss none``) sets only
    ``loss_weight=0.0``, the baseline. Other keys the config gives ``loss_contrast`` stay.

    Raises:
        ValueError: the model has no ``roi_head.mask_head``, or another loss (one line).
    """
    head = (cfg.get("model") or {}).get("roi_head", {}).get("mask_head")
    if head is None:
        raise ValueError(f"the config has no {LOSS_KEY.rpartition('.')[0]}")
    if settings is not None and not isinstance(settings, DCLSettings):
        raise ValueError(f"{settings.name}: not wired for mmdet")
    values = {"loss_weight": 0.0} if settings is None else settings.to_mapping()
    current = head.get("loss_contrast")
    head["loss_contrast"] = {**(current or {}), **values}
    return cfg
