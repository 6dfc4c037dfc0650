"""Synthetic detectron2 inputs shared by the model tests (Mask R-CNN, Swin, SparseInst)."""

from __future__ import annotations

import numpy as np
import torch
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage


def batch(num_images=2, size=128, seed=0):
    """``num_images`` dicts in detectron2's input format: a ``[3, size, size]`` float32 image
    with two large elliptical instances (classes 0 and 1), so every gt RoI has at least
    K = 32 foreground and 32 background pixels in its 28 x 28 crop."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    out = []
    for _ in range(num_images):
        image = rng.uniform(0, 60, size=(3, size, size)).astype(np.float32)
        masks = []
        for cy, cx in ((40, 40), (85, 80)):
            m = ((yy - cy) / 26.0) ** 2 + ((xx - cx) / 30.0) ** 2 <= 1.0
            image[:, m] = 200.0
            masks.append(m)
        inst = Instances((size, size))
        inst.gt_masks = BitMasks(torch.from_numpy(np.stack(masks)))
        inst.gt_boxes = Boxes(inst.gt_masks.get_bounding_boxes().tensor)
        inst.gt_classes = torch.tensor([0, 1])
        out.append({"image": torch.from_numpy(image), "height": size, "width": size,
                    "instances": inst})
    return out


def train_step(model, inputs):
    """One forward and backward in training mode; returns (loss dict, the EventStorage)."""
    model.train()
    with EventStorage(0) as storage:
        losses = model(inputs)
        sum(losses.values()).backward()
    return losses, storage
