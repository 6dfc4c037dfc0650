"""Synthetic detectron2 inputs shared by the model tests (Mask R-CNN, Swin, SparseInst)."""

from __future__ import annotations

from detectron2.utils.events import EventStorage

from dcl_detectron2.synthetic import synthetic_batch

#: Two large ellipses (classes 0 and 1), so every gt RoI has at least K = 32 foreground and
#: 32 background pixels in its 28 x 28 crop.
TWO_ELLIPSES = ((40, 40, 26.0, 30.0, 0), (85, 80, 26.0, 30.0, 1))


def batch(num_images=2, size=128, seed=0):
    """``num_images`` images of ``size`` x ``size`` with :data:`TWO_ELLIPSES`."""
    return synthetic_batch(num_images, size, ellipses=TWO_ELLIPSES, seed=seed)


def train_step(model, inputs):
    """One forward and backward in training mode; returns (loss dict, the EventStorage)."""
    model.train()
    with EventStorage(0) as storage:
        losses = model(inputs)
        sum(losses.values()).backward()
    return losses, storage
