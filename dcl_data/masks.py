"""Mask-based sources: label images and mask stacks to :class:`~dcl_data.coco.Instance`,
tiling, and the small-instance filter."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pycocotools.mask as mask_utils

from .coco import Instance


def instances_from_label_image(labels: np.ndarray, category: str) -> list[Instance]:
    """One instance per positive value of an instance label image.

    Args:
        labels: integer array ``[H, W]``; 0 is background, each value > 0 one instance
            (as StarDist's ``mask2d.tif``).
        category: category name of every instance.

    Returns:
        Mask instances in increasing label order; values absent from ``labels`` give none.

    Raises:
        ValueError: ``labels`` is not a 2-D integer array or has negative values.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"label image must be a 2-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size and labels.min() < 0:
        raise ValueError("label image has negative values")
    return [Instance(category=category, mask=labels == value)
            for value in np.unique(labels) if value > 0]


def instances_from_masks(masks: np.ndarray, categories: Sequence[str]) -> list[Instance]:
    """One instance per mask of a stack.

    Args:
        masks: ``bool`` array ``[N, H, W]`` (nonzero = instance pixel).
        categories: ``N`` category names, one per mask.

    Raises:
        ValueError: ``masks`` is not 3-D or ``len(categories) != N``.
    """
    masks = np.asarray(masks)
    if masks.ndim != 3 or len(categories) != masks.shape[0]:
        raise ValueError(f"need masks [N, H, W] and N categories, got {masks.shape} and {len(categories)}")
    return [Instance(category=c, mask=m.astype(bool)) for c, m in zip(categories, masks)]


def tile_origins(height: int, width: int, tile: int, stride: int, row_range: tuple[int, int],
                 col_range: tuple[int, int] | None = None) -> list[tuple[int, int]]:
    """Top-left ``(y, x)`` of every ``tile`` x ``tile`` window, stepped by ``stride``,
    that lies wholly inside rows ``row_range = (y0, y1)`` and columns ``col_range = (x0, x1)``
    (default ``(0, width)``) of an image of ``height`` x ``width`` pixels. Row-major order.

    Raises:
        ValueError: a non-positive tile/stride, or a row or column range outside the image.
    """
    y0, y1 = row_range
    x0, x1 = (0, width) if col_range is None else col_range
    if tile <= 0 or stride <= 0:
        raise ValueError("tile and stride must be positive")
    if not 0 <= y0 < y1 <= height:
        raise ValueError(f"row range {row_range} outside an image of height {height}")
    if not 0 <= x0 < x1 <= width:
        raise ValueError(f"column range {col_range} outside an image of width {width}")
    return [(y, x) for y in range(y0, y1 - tile + 1, stride) for x in range(x0, x1 - tile + 1, stride)]


def area_of(instance: Instance, height: int, width: int) -> float:
    """Area in pixels as pycocotools computes it (polygons are rasterised first)."""
    if instance.mask is not None:
        return float(np.count_nonzero(instance.mask))
    return float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(instance.polygons, height, width))))


def drop_small(instances: list[Instance], height: int, width: int, min_area: float) -> tuple[list[Instance], int]:
    """Split off instances whose area is below ``min_area`` pixels.

    Returns:
        ``(kept, number_dropped)``; ``kept`` keeps the input order.
    """
    kept = [inst for inst in instances if area_of(inst, height, width) >= min_area]
    return kept, len(instances) - len(kept)
