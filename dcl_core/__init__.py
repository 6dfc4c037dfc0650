"""dcl_core: the dense contrastive loss of "Dense Contrastive Loss for Instance Segmentation"
(BMVC 2022), framework-agnostic PyTorch.

An adapter hands :class:`DenseContrastiveLoss` the RoI features ``[R, C, H, W]`` and the
ground-truth masks ``[R, H, W]`` (bool) and adds the returned scalar to its loss dict.
"""

from .infonce import info_nce, l2_normalize
from .loss import DenseContrastiveLoss
from .sampling import SampledPixels, sample_pixels

__all__ = [
    "DenseContrastiveLoss",
    "SampledPixels",
    "info_nce",
    "l2_normalize",
    "sample_pixels",
]
