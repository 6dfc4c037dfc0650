"""Image bootstrap of mIoU from per-image pixel counts (the mmseg runs' ``*_areas.npz``).

mIoU over a set is the mean, over the classes whose union is not empty, of the set-wide
intersection / union (mmseg's ``IoUMetric``, cityscapesScripts alike). A resample draws the
images with replacement (:func:`analysis.bootstrap.resample_weights`, the same draws as every
other cell on a split with as many images, so two runs' resamples are paired) and sums each
image's counts as often as it was drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np

from .bootstrap import resample_weights

__all__ = ["miou_percent", "resampled_miou"]


def miou_percent(intersect: np.ndarray, union: np.ndarray) -> np.ndarray:
    """mIoU in percent of summed counts ``[..., K]`` -> ``[...]``; NaN where no class has a
    non-empty union."""
    intersect, union = np.asarray(intersect, np.float64), np.asarray(union, np.float64)
    iou = np.divide(intersect, union, out=np.full(union.shape, np.nan), where=union > 0)
    present = np.isfinite(iou)
    count = present.sum(-1)
    total = np.where(present, iou, 0.0).sum(-1)
    return np.where(count > 0, 100.0 * total / np.maximum(count, 1), np.nan)


def resampled_miou(areas_npz: str | Path, resamples: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """(image names ``[I]``, mIoU of each resample ``[B]`` in percent) of an ``*_areas.npz``
    (``intersect``, ``union`` ``[I, K]`` and ``images`` ``[I]``, dcl_mmseg.IoUMetricWriter).

    Raises:
        ValueError: the file lacks those arrays or they disagree in shape.
    """
    with np.load(areas_npz) as data:
        if not {"intersect", "union", "images"} <= set(data.files):
            raise ValueError(f"{areas_npz}: needs intersect, union and images arrays")
        inter, union, images = data["intersect"], data["union"], data["images"]
    if inter.shape != union.shape or inter.ndim != 2 or len(images) != inter.shape[0]:
        raise ValueError(f"{areas_npz}: intersect {inter.shape}, union {union.shape} and "
                         f"{len(images)} images disagree")
    weights = resample_weights(inter.shape[0], resamples, seed).astype(np.float64)
    names = np.asarray([Path(str(p)).name for p in images])
    return names, miou_percent(weights @ inter, weights @ union)
