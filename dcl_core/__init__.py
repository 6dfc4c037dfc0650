"""dcl_core: the dense contrastive loss of "Dense Contrastive Loss for Instance Segmentation"
(BMVC 2022), framework-agnostic PyTorch.

An adapter hands :class:`DenseContrastiveLoss` the RoI features ``[R, C, H, W]`` and the
ground-truth masks ``[R, H, W]`` (bool) and adds the returned scalar to its loss dict. It builds
the module from the loss's settings (:class:`DCLSettings`, the one home of the defaults), which
the training CLIs read from the neutral ``--loss`` option (:mod:`dcl_core.registry`).
"""

from .contrastmask import ContrastMaskLoss, nonlocal_enhance
from .contrastmask_settings import ContrastMaskSettings
from .infonce import info_nce, l2_normalize
from .loss import DenseContrastiveLoss
from .registry import (LOSS_SEPARATOR, LOSSES, NO_LOSS, build_loss, format_loss_option, loss_settings,
                       losses_variant_name, parse_loss_option, parse_losses)
from .sampling import SampledPixels, sample_pixels
from .settings import DCLSettings

__all__ = [
    "ContrastMaskLoss",
    "ContrastMaskSettings",
    "DCLSettings",
    "DenseContrastiveLoss",
    "LOSSES",
    "LOSS_SEPARATOR",
    "NO_LOSS",
    "build_loss",
    "format_loss_option",
    "loss_settings",
    "losses_variant_name",
    "parse_loss_option",
    "parse_losses",
    "SampledPixels",
    "info_nce",
    "l2_normalize",
    "nonlocal_enhance",
    "sample_pixels",
]
