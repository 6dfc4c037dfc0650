"""dcl_core: the dense contrastive loss of "Dense Contrastive Loss for Instance Segmentation"
(BMVC 2022), framework-agnostic PyTorch.

An adapter hands :class:`DenseContrastiveLoss` the RoI features ``[R, C, H, W]`` and the
ground-truth masks ``[R, H, W]`` (bool) and adds the returned scalar to its loss dict. It builds
the module from the loss's settings (:class:`DCLSettings`, the one home of the defaults), which
the training CLIs read from the neutral ``--loss`` option (:mod:`dcl_core.registry`).
"""

from .cac import CACLoss, CACProjectionHead, CACWeightBranch
from .cac_roi import CACMaskLoss, CACSettings
from .infonce import info_nce, l2_normalize
from .loss import DenseContrastiveLoss
from .registry import LOSSES, NO_LOSS, build_loss, format_loss_option, loss_settings, parse_loss_option
from .sampling import SampledPixels, sample_pixels
from .settings import DCLSettings

__all__ = [
    "DCLSettings",
    "DenseContrastiveLoss",
    "LOSSES",
    "NO_LOSS",
    "build_loss",
    "format_loss_option",
    "loss_settings",
    "parse_loss_option",
    "SampledPixels",
    "info_nce",
    "l2_normalize",
    "sample_pixels",
]
__all__ += ["CACLoss", "CACMaskLoss", "CACProjectionHead", "CACSettings", "CACWeightBranch"]
