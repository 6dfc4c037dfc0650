"""Synthetic detectron2 training inputs: images with elliptical instances and their targets.

For tests and benchmarks that must not depend on a dataset (``bench/bench_train_step.py`` at
paper resolution on a GPU, the model tests on the CPU). Not a data augmentation.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from detectron2.structures import BitMasks, Boxes, Instances

#: (centre y, centre x, radius y, radius x, class) of an ellipse, in pixels.
Ellipse = Tuple[float, float, float, float, int]


def synthetic_batch(num_images: int = 2, height: int = 128, width: Optional[int] = None, *,
                    ellipses: Optional[Sequence[Ellipse]] = None, instances_per_image: int = 8,
                    num_classes: int = 2, seed: int = 0, device: str = "cpu") -> list:
    """``num_images`` dicts in detectron2's training input format.

    Each has ``image`` ``[3, H, W]`` float32 (noise in 0-60, instances painted 200, so they
    are easy to tell apart), ``height``/``width`` (int, pixels) and ``instances`` with
    ``gt_masks`` (BitMasks ``[N, H, W]`` bool), ``gt_boxes`` (the masks' tight boxes, XYXY
    float32) and ``gt_classes`` (``[N]`` int64).

    Args:
        num_images: images in the batch.
        height, width: image size in pixels (``width`` defaults to ``height``).
        ellipses: the same instances on every image; by default ``instances_per_image``
            random ellipses per image, centred in the middle 60% of each side with radii of
            5-20% of it, classes drawn uniformly from ``num_classes``.
        seed: seeds the noise and the random ellipses (the batch is deterministic).
        device: where the targets go (the image stays on the CPU, as detectron2 loads it).

    Raises:
        ValueError: a size, count or class outside its range.
    """
    width = height if width is None else width
    if num_images < 1 or height < 1 or width < 1 or num_classes < 1:
        raise ValueError("num_images, height, width and num_classes must be >= 1")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    out = []
    for _ in range(num_images):
        shapes = ellipses
        if shapes is None:
            if instances_per_image < 1:
                raise ValueError(f"instances_per_image must be >= 1, got {instances_per_image}")
            shapes = [(rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width,
                       rng.uniform(0.05, 0.2) * height, rng.uniform(0.05, 0.2) * width,
                       int(rng.integers(num_classes))) for _ in range(instances_per_image)]
        if any(not 0 <= c < num_classes for *_, c in shapes):
            raise ValueError(f"every ellipse class must be in [0, {num_classes})")
        image = rng.uniform(0, 60, size=(3, height, width)).astype(np.float32)
        masks = []
        for cy, cx, ry, rx, _ in shapes:
            m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
            image[:, m] = 200.0
            masks.append(m)
        inst = Instances((height, width))
        inst.gt_masks = BitMasks(torch.from_numpy(np.stack(masks)))
        inst.gt_boxes = Boxes(inst.gt_masks.get_bounding_boxes().tensor)
        inst.gt_classes = torch.tensor([c for *_, c in shapes], dtype=torch.int64)
        out.append({"image": torch.from_numpy(image), "height": height, "width": width,
                    "instances": inst.to(device)})
    return out
