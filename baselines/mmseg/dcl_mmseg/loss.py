"""``CACLoss`` in mmseg's registry: :class:`dcl_core.cac.CACLoss` (the loss math, official
defaults and quirks as named options) under the name mmseg configs use, ``loss_name``
``loss_cac`` (the official name; the heads route it apart from the CE losses)."""

from __future__ import annotations

from dcl_core.cac import CACLoss as _CoreCACLoss
from mmseg.registry import MODELS

__all__ = ["CACLoss"]


@MODELS.register_module()
class CACLoss(_CoreCACLoss):
    """:class:`dcl_core.cac.CACLoss` (same arguments, shapes and errors) for mmseg configs.

    ``loss_weight`` is a plain attribute: :class:`dcl_mmseg.CACWarmupHook` sets it to 0 for
    the warm-up and back.
    """

    @property
    def loss_name(self) -> str:
        return "loss_cac"
