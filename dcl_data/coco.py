"""COCO instance-segmentation records: encoding instances with pycocotools and writing JSON.

Follows the COCO format as read by pycocotools' ``COCO``/``COCOeval``: image ids,
annotation ids and category ids are positive integers, ``bbox`` is ``[x, y, w, h]`` in
pixels, ``area`` is the mask area in pixels, ``iscrowd`` is 0. Area and bbox always come
from pycocotools (``mask.area``/``mask.toBbox`` of the rasterised segmentation), so the
numbers agree with what COCOeval computes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils

# Re-exported: the dataset writers use the project's one atomic JSON writer.
from analysis.io import write_json_atomic  # noqa: F401


@dataclass
class Instance:
    """One annotated object before it gets ids.

    Exactly one of ``polygons`` and ``mask`` is set.

    Attributes:
        category: category name, e.g. ``"person"``.
        polygons: list of polygons, each a flat ``[x1, y1, x2, y2, ...]`` list of float
            pixel coordinates (>= 3 points); several polygons form one instance
            (an object split by an occluder).
        mask: ``bool`` array ``[H, W]`` of the instance's pixels.
    """

    category: str
    polygons: list[list[float]] | None = None
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.polygons is None) == (self.mask is None):
            raise ValueError("Instance needs exactly one of polygons and mask")


def encode_instance(instance: Instance, height: int, width: int) -> dict[str, Any]:
    """COCO ``segmentation``, ``area`` and ``bbox`` of an instance in an image of
    ``height`` x ``width`` pixels.

    Polygons are kept as polygons (as labelme drew them); masks become compressed RLE
    with ``counts`` decoded to ``str`` for JSON.

    Returns:
        ``{"segmentation": ..., "area": float, "bbox": [x, y, w, h]}`` (floats, pixels).

    Raises:
        ValueError: the mask shape is not ``(height, width)`` or a polygon has fewer than
            3 points.
    """
    if instance.mask is not None:
        mask = np.asarray(instance.mask)
        if mask.shape != (height, width):
            raise ValueError(f"mask shape {mask.shape} differs from image ({height}, {width})")
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        segmentation: Any = {"size": [int(height), int(width)], "counts": rle["counts"].decode("ascii")}
    else:
        polygons = [[float(v) for v in poly] for poly in instance.polygons or []]
        if not polygons or any(len(p) < 6 or len(p) % 2 for p in polygons):
            raise ValueError("each polygon needs >= 3 points as a flat [x1, y1, x2, y2, ...] list")
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
        segmentation = polygons
    return {
        "segmentation": segmentation,
        "area": float(mask_utils.area(rle)),
        "bbox": [float(v) for v in mask_utils.toBbox(rle)],
    }


@dataclass
class CocoSplit:
    """Accumulates one split's COCO dict, numbering images and annotations from 1.

    ``categories`` is the shared, ordered category list (ids from 1) used by every split
    so that category ids mean the same in train and val.
    """

    categories: list[dict[str, Any]]
    images: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cat_id = {c["name"]: c["id"] for c in self.categories}

    def add_image(self, file_name: str, height: int, width: int, instances: list[Instance],
                  **extra: Any) -> int:
        """Add an image and its instances; returns the new image id (1, 2, ...).

        ``extra`` keys (e.g. ``source``, ``crop``) are stored on the image entry; COCO
        readers ignore unknown keys. Raises :class:`KeyError` for an unknown category.
        """
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "file_name": file_name, "height": int(height),
                            "width": int(width), **extra})
        for inst in instances:
            if inst.category not in self._cat_id:
                raise KeyError(f"unknown category {inst.category!r} in {file_name}")
            record = encode_instance(inst, height, width)
            self.annotations.append({
                "id": len(self.annotations) + 1,
                "image_id": image_id,
                "category_id": self._cat_id[inst.category],
                "iscrowd": 0,
                **record,
            })
        return image_id

    def to_dict(self, info: dict[str, Any] | None = None) -> dict[str, Any]:
        """The COCO dict: ``info``, ``licenses``, ``images``, ``annotations``, ``categories``."""
        return {
            "info": info or {},
            "licenses": [],
            "images": self.images,
            "annotations": self.annotations,
            "categories": self.categories,
        }
