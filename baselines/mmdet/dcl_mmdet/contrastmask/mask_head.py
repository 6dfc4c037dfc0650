"""ContrastMask's mask head: FCN mask head fed by the contrastive branch and the CAM.

Official ``FCNMaskCamHead`` and ``ContrastiveHead.forward`` (huiserwang/ContrastMask
``ilib/model/contrastmask_head/mask_head.py:L61-84``, ``contrastive_head.py:L108-131``;
reference A.2 items 4-6):

1. the contrastive branch encodes the detached 28 x 28 contrastive RoI features (the loss
   module's encoder, :class:`dcl_core.contrastmask.ContrastMaskLoss`);
2. :func:`dcl_core.contrastmask.nonlocal_enhance` (a parameter-free non-local block) mixes the
   encoded pixels;
3. the result is resized bilinearly 28 -> 14, passed through ``fuseconv`` (1x1 conv) and ADDED to
   the 14 x 14 mask RoI features (the README says the paper's Fig. 5 concatenation is wrong);
4. the RoI's CAM, min-max normalised per RoI (:func:`dcl_core.contrastmask_keys.normalize_cam`;
   the official 1e-4 offset cancels in it), is added, broadcast over the channels, keeping its
   gradient (the mask loss trains the box head's classification convs through it);
5. the standard FCN mask head (4 convs, deconv, class-agnostic logits) follows.

Steps 1-3 run at training AND test time. With ``loss_contrastmask`` off (``loss_weight`` 0) the
branch is not built and steps 1-3 are skipped: the partially-supervised Mask R-CNN with CAM
(the official ablation "w/o CL").
"""

from __future__ import annotations

from typing import Mapping, Optional

import torch.nn.functional as F
from torch import Tensor, nn

from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.registry import MODELS

__all__ = ["ContrastMaskHead"]


@MODELS.register_module()
class ContrastMaskHead(FCNMaskHead):
    """FCN mask head of ContrastMask (class-agnostic by default, as the official configs).

    Args:
        loss_contrastmask: ContrastMask loss settings (:class:`dcl_core.contrastmask.
            ContrastMaskSettings` keys; missing keys take its defaults, the official ones), or
            None / ``loss_weight`` 0 for no contrastive branch. It is part of the model, so the
            training CLIs' ``--loss none`` (which turns DCL off) leaves it on.
        loss_contrast: the dense contrastive loss's key of the other dcl_mmdet heads, where
            ``--loss`` writes; DCL is not wired to this head, so only None or ``loss_weight`` 0
            (what ``--loss none`` writes) are accepted.
        contrast_size: side of the contrastive RoI features (28).
        **kwargs: ``FCNMaskHead``'s (``class_agnostic`` defaults to True here).

    Raises:
        ValueError / TypeError: bad ``loss_contrastmask`` settings (prefixed
            ``loss_contrastmask:``), or DCL asked for through ``loss_contrast``.
    """

    def __init__(self, *args, loss_contrastmask: Optional[Mapping] = None,
                 loss_contrast: Optional[Mapping] = None, contrast_size: int = 28,
                 class_agnostic: bool = True, **kwargs) -> None:
        if loss_contrast is not None and loss_contrast.get("loss_weight", 0) != 0:
            raise ValueError("ContrastMaskHead: the dense contrastive loss (loss_contrast) is not "
                             "wired to this head; only loss_weight 0 (--loss none) is accepted")
        super().__init__(*args, class_agnostic=class_agnostic, **kwargs)
        from dcl_core.contrastmask import ContrastMaskSettings

        from ..contrast import build_contrast_loss

        self.contrast_size = contrast_size
        self.contrast_loss = build_contrast_loss(loss_contrastmask, self.in_channels,
                                                 ContrastMaskSettings, "loss_contrastmask")
        self.fuseconv = None
        if self.contrast_loss is not None:
            self.fuseconv = nn.Conv2d(self.contrast_loss.settings.embed_channels,
                                      self.in_channels, 1)

    def init_weights(self) -> None:
        super().init_weights()
        if self.fuseconv is not None:  # as the official init_weights
            nn.init.kaiming_normal_(self.fuseconv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(self.fuseconv.bias, 0)

    def forward(self, x: Tensor, cam: Optional[Tensor] = None,
                encoded: Optional[Tensor] = None) -> Tensor:
        """Mask logits.

        Args:
            x: mask RoI features, float ``[N, C, 14, 14]``.
            cam: the RoIs' CAMs at the mask RoI size, float ``[N, 1, 14, 14]`` (unnormalised),
                or None (no CAM).
            encoded: the contrastive branch's encoded 28 x 28 features, float ``[N, E, 28,
                28]`` (``self.contrast_loss`` encoder), or None (no branch).

        Returns:
            float ``[N, K, 28, 28]`` (K = 1 when class-agnostic).
        """
        from dcl_core.contrastmask import nonlocal_enhance
        from dcl_core.contrastmask_keys import normalize_cam

        if encoded is not None:
            fused = F.interpolate(nonlocal_enhance(encoded), size=x.shape[-2:], mode="bilinear",
                                  align_corners=False)
            x = x + self.fuseconv(fused)
        if cam is not None:
            x = x + normalize_cam(cam[:, 0])[:, None]
        return super().forward(x)

    def set_ramp_epoch(self, epoch: int) -> None:
        """Set the contrastive loss's epoch ramp w(e) for the 0-based ramp epoch ``epoch``
        (:class:`~dcl_mmdet.contrastmask.ContrastRampHook`); no-op without the loss."""
        if self.contrast_loss is not None:
            self.contrast_loss.set_epoch(epoch)
