"""ContrastMask's loss in mmdet configs: ``loss_contrastmask=dict(...)`` of ``ContrastMaskHead``.

The loss itself (its encoder, projector, query/key sampling and the four InfoNCE-style terms)
is :class:`dcl_core.contrastmask.ContrastMaskLoss`, framework-free; this module only turns the
config mapping into it, like :mod:`dcl_mmdet.contrast` does for DCL.
"""

from __future__ import annotations

from typing import Mapping, Optional

from torch import nn

__all__ = ["build_contrastmask_loss"]


def build_contrastmask_loss(cfg: Optional[Mapping], channels: int) -> Optional[nn.Module]:
    """The ContrastMask loss module for ``channels``-channel contrastive RoI features, or None.

    Args:
        cfg: None (no contrastive branch), or a mapping of
            :class:`dcl_core.contrastmask.ContrastMaskSettings` keys (missing keys: the
            official defaults); ``loss_weight`` 0 builds nothing.
        channels: C of the contrastive RoI features.

    Raises:
        ValueError / TypeError: an unknown key or a bad value, prefixed ``loss_contrastmask:``.
    """
    if cfg is None:
        return None
    from dcl_core.contrastmask import ContrastMaskSettings
    from dcl_core.registry import build_loss

    try:
        settings = ContrastMaskSettings.from_mapping(dict(cfg))
    except (TypeError, ValueError) as e:
        raise type(e)(f"loss_contrastmask: {e}") from None
    return build_loss(settings, channels)
